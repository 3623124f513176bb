"""Django-free dataset core: validate an uploaded zip and write a normalised dataset tree.

The Django service calls `dataset_import`; everything here takes plain paths and never imports Django.
"""

from .errors import DatasetError, Limits
from .importer import dataset_import
from .report import DatasetReport

__all__ = ["DatasetError", "DatasetReport", "Limits", "dataset_import"]
