"""Importers: turn a study kept in another layout (BIDS) into a standard fusemed cohort folder."""

from fusemed.importers.bids import ImportResult, import_bids
from fusemed.importers.bids_config import BidsImportConfig, load_import_config

__all__ = ["BidsImportConfig", "ImportResult", "import_bids", "load_import_config"]
