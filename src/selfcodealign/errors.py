"""User-facing errors: the CLI prints their message on one line and exits non-zero."""


class UserError(Exception):
    """A mistake the user can fix (bad config, missing file, unreachable server)."""


def missing_extra(package: str, extra: str) -> UserError:
    return UserError(
        f"{package} is not installed; install it with: pip install 'selfcodealign[{extra}]'"
    )
