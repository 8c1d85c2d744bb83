"""Uploading an exported folder to the Hugging Face Hub with ``huggingface_hub``: the
token comes from where huggingface_hub looks (HF_TOKEN, `hf auth login`), the server
from HF_ENDPOINT. Whatever goes wrong on the way is one line."""

from __future__ import annotations

from pathlib import Path

from selfcodealign.errors import UserError
from selfcodealign.models.loading import require


def check_repo_id(repo_id: str) -> None:
    """A malformed repository id is an error before anything is written."""
    require("huggingface_hub", "hf")
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as e:
        raise UserError(f"{repo_id!r} is not a Hub repository id (NAMESPACE/NAME): {_first_line(e)}") from None


def push_folder(folder: Path, repo_id: str, *, private: bool = False, repo_type: str = "dataset") -> str:
    """Creates ``repo_id`` if it does not exist and uploads ``folder`` as one commit;
    returns the repository's URL."""
    hub = require("huggingface_hub", "hf")
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    # HfHubHTTPError derives from the HTTP library's own error (httpx's or requests'),
    # whose other subclasses are the connection failures
    network = (HfHubHTTPError.__bases__[0], OSError)
    check_repo_id(repo_id)
    api = hub.HfApi()
    try:
        # not private: the namespace's default (an organisation may make its repositories private)
        url = api.create_repo(repo_id, repo_type=repo_type, private=private or None, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type,
                          commit_message="Upload with selfcodealign")
    except LocalTokenNotFoundError:
        raise UserError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN") from None
    except ValueError as e:  # the Hub refused the card's metadata (huggingface_hub checks it first)
        raise UserError(f"the Hub refused {folder / 'README.md'}: {' '.join(str(e).split())}") from None
    except network as e:
        raise UserError(f"pushing to {api.endpoint} failed: {_first_line(e) or type(e).__name__}") from None
    return str(url)


def _first_line(e: BaseException) -> str:
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
