"""Agency data in and out: spreadsheets (XLSX, CSV/TSV in UTF-8, GBK or GB18030) read through
column presets into the same write path as every other write, and rosters, credit files and
lists read back out (docs/interchange.md).

Layers, each importing only those above it::

    cells, report         one cell read as text, code, ID number, date or number; problems
    readers               bytes → sheets of cells (the encoding detected, or refused)
    headers               a sheet's header row(s) found, merged cells and notes included
    presets, departments  column maps by Chinese header name, and rows → typed records
    importer              records checked against the database and written (all or nothing)
    exports, listing      the roster (附件1) and the credit file (附件2) out; the list reads
    template, endpoints, cli

No personal value (a name, an ID number, a phone number) reaches a problem, a log line or an
error: a problem names the sheet, the row, the column and what is wrong, never what was there.
"""
