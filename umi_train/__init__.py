"""umi_train: LoRA training of the α-UMi roles (encode, collate, sft, glpft, tiny, load_role).

Importing this package is cheap: torch, transformers and peft are imported by the functions
that need them, never at import time.
"""

from umi_train.encode import EncodingError, encode, encode_prompt
from umi_train.load import RoleNotTrainedError, load_role

__all__ = ["EncodingError", "RoleNotTrainedError", "encode", "encode_prompt", "load_role"]
