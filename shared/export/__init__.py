"""Bulk export of signed URLs (the export function's domain).

- ``model``: options, names, key filters, rows and formats, part buffering (pure);
- ``checkpoint``: what another invocation needs to continue an export (pure).

The pure names are re-exported here (``from shared.export import KeyFilter``); the modules that reach the
network are imported by their own names, so importing this package stays cheap.
"""

from shared.export.checkpoint import Checkpoint
from shared.export.model import (
    CHECKPOINT_FOLDER,
    COLUMNS,
    ExportOptions,
    KeyFilter,
    PartBuffer,
    Row,
    checkpoint_key,
    export_id,
    format_lines,
    format_rows,
    format_time,
    header,
    normalise_prefixes,
    output_key,
    parse_options,
    read_rows,
    safe_name,
    signing_time,
    url_signer,
)

__all__ = [
    "CHECKPOINT_FOLDER",
    "COLUMNS",
    "Checkpoint",
    "ExportOptions",
    "KeyFilter",
    "PartBuffer",
    "Row",
    "checkpoint_key",
    "export_id",
    "format_lines",
    "format_rows",
    "format_time",
    "header",
    "normalise_prefixes",
    "output_key",
    "parse_options",
    "read_rows",
    "safe_name",
    "signing_time",
    "url_signer",
]
