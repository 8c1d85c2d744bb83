"""A run's dataset where users keep datasets: a folder of Parquet files with a dataset
card that the Hugging Face Hub and `datasets` read as it is (``export_dataset``), and its
upload to the Hub (``push_folder``). Field names follow TRL's conventions, so its
SFTTrainer and DPOTrainer take the loaded splits without conversion.
"""

from selfcodealign.hub.dataset import export_dataset
from selfcodealign.hub.push import push_folder

__all__ = ["export_dataset", "push_folder"]
