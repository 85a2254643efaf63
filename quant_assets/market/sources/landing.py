"""The landing zone: the folder where a vendor (or the vendor simulator) drops daily files.

Layout, one file per data type per trading day::

    {root}/{kind}/{YYYY-MM-DD}.{csv|csv.gz|parquet}

- ``kind`` is one of ``bars``, ``trades``, ``order_book``, ``news``, ``corporate_actions``;
  ``YYYY-MM-DD`` is the trading day the file is for (news and corporate actions: the day
  they were received, which may hold items published since the previous file).
- Columns are exactly those of ``columns.py`` for the kind (header row in CSV, column names
  in Parquet); extra columns are ignored with a note, missing columns reject the file.
- ``ts`` is ISO-8601 exchange-local time, with or without an offset
  (``2024-01-02T09:30:03``, ``2024-01-02 09:30:03.120+08:00``); values without an offset
  are Asia/Shanghai. Parquet may instead store a timestamp column (tz-aware, or naive local).
  Dates (``date``, ``announce_date``, ``ex_date``, ``list_date``) are ``YYYY-MM-DD``.
- Text is UTF-8 (a BOM is tolerated). Invalid bytes are read as U+FFFD, so the rows holding
  them are quarantined by validation instead of failing the whole file.
- Prices are unadjusted CNY, volumes and sizes in shares; empty order-book levels have an
  empty price and size 0. Booleans are ``true/false`` or ``1/0``.
- A file appears atomically: writers write ``.{name}.tmp`` in the same folder and rename it,
  so a reader (the sensor) never sees half a file. Dot-files are ignored.
- One file per day and kind, in one format. Two (an old Parquet and a corrected CSV, say)
  are an error that names both (`find_landing_file` raises IngestError, the ingest step
  fails with it): the reader never guesses which one holds the right values, and nothing is
  moved. The operator removes the wrong one; the day's files then differ, so the sensor
  requests the day again (within its look-back; older days are rerun by hand). The same
  holds for ``universe.parquet`` and ``universe.csv``.
- A day is complete when every required kind has its file (``complete_days``); a kind in two
  formats counts, so the day's run is requested and fails visibly rather than waiting
  unnoticed (``landing_conflicts`` lists such days).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
from collections.abc import Iterable
from datetime import date as Date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from quant_assets.market.contract.schemas import CONTRACT, column_types
from quant_assets.market.validation import IngestError, parse_column
from resources.market import KINDS

LANDING_KINDS = KINDS  # a market may deliver fewer (MarketDataResource.kinds)
FORMATS = ("parquet", "csv.gz", "csv")  # longest suffix first when matching names
# News and corporate actions may legitimately be empty on a day (a header and no rows).
MAY_BE_EMPTY = ("news", "corporate_actions")

_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(parquet|csv\.gz|csv)$")


def landing_path(root: str | Path, kind: str, date: object, fmt: str = "parquet") -> Path:
    """Where the file of `kind` for trading day `date` lives."""
    if kind not in LANDING_KINDS:
        raise ValueError(f"unknown landing kind {kind!r}; expected one of {LANDING_KINDS}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    day = pd.Timestamp(date).strftime("%Y-%m-%d")
    return Path(root) / kind / f"{day}.{fmt}"


def _to_csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Text form of the landing CSV: ISO timestamps with offset, ISO dates, true/false."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out[col] = s.astype(str).where(s.notna(), "")
        elif s.dtype.kind == "M":
            out[col] = s.dt.strftime("%Y-%m-%d").where(s.notna(), "")
        elif s.dtype == bool:
            out[col] = s.map({True: "true", False: "false"})
    return out


def write_landing_file(
    df: pd.DataFrame, root: str | Path, kind: str, date: object, fmt: str = "parquet"
) -> Path:
    """Write `df` as the landing file of `kind` for `date` (atomically); returns its path."""
    path = landing_path(root, kind, date, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    # pandas writes `attrs` into Parquet metadata as JSON; loaders may keep arrays there.
    df = df.copy(deep=False)
    df.attrs = {}
    # a temporary name of this process's own: two writers of the same day (the demo's vendor
    # process and the pipeline) never write into one file; the last rename wins, same content
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if fmt == "parquet":
        df.to_parquet(tmp, index=False)
    else:
        _to_csv_frame(df).to_csv(
            tmp,
            index=False,
            encoding="utf-8",
            lineterminator="\n",
            compression="gzip" if fmt == "csv.gz" else None,
        )
    os.replace(tmp, path)
    return path


def _csv_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as exc:
            raise IngestError(str(path), f"truncated or corrupt gzip: {exc}") from exc
    return raw


def _check_last_line(path: Path, data: bytes) -> None:
    """A truncated CSV ends in a short line; pandas would pad it with NaN silently."""
    text = data.decode("utf-8-sig", errors="replace")
    lines = text.rstrip("\r\n").split("\n")
    header = next(csv.reader([lines[0]]))
    if len(lines) < 2:
        return
    last = lines[-1]
    if '"' in last:  # a quoted field may span lines: parse the whole file to be sure
        rows = list(csv.reader(io.StringIO(text)))
        fields = len(rows[-1]) if rows else 0
    else:
        fields = len(next(csv.reader([last])))
    if fields < len(header):
        raise IngestError(str(path), f"truncated: last line has {fields} of {len(header)} fields")


def _read_csv(path: Path, kind: str) -> pd.DataFrame:
    data = _csv_bytes(path)
    if not data.strip():
        raise IngestError(str(path), "empty file")
    _check_last_line(path, data)
    types = column_types(kind)
    # Text columns stay text (codes like 000001.SZ, ids with leading zeros); the rest is
    # inferred and then parsed by `parse_column` below.
    text_cols = {c: "str" for c, (fam, _) in types.items() if fam in ("str", "ts", "date")}
    try:
        return pd.read_csv(
            io.BytesIO(data),
            dtype=text_cols,
            encoding="utf-8-sig",
            encoding_errors="replace",
            keep_default_na=True,
        )
    except pd.errors.EmptyDataError as exc:
        raise IngestError(str(path), "empty file") from exc
    except (pd.errors.ParserError, ValueError, UnicodeError) as exc:
        raise IngestError(str(path), f"unreadable CSV: {exc}") from exc


def read_landing_file(path: str | Path, kind: str) -> pd.DataFrame:
    """Read one landing file into the column contract (columns.py order and dtypes).

    A column is parsed to its contract dtype when every value parses; otherwise it is left as
    read, so that `validate()` quarantines the offending rows instead of this reader failing.
    Raises IngestError for empty, truncated or unreadable files and missing columns.
    """
    path = Path(path)
    if kind not in CONTRACT:
        raise ValueError(f"unknown kind {kind!r}")
    if not path.exists():
        raise IngestError(str(path), "no such file")
    if path.stat().st_size == 0:
        raise IngestError(str(path), "empty file")
    if path.name.endswith(".parquet"):
        try:
            # Arrow frees each column once converted and keeps one block per column: the read
            # peaks at 1.7x the frame instead of 2.6x with pd.read_parquet's consolidation.
            df = pq.read_table(path).to_pandas(self_destruct=True, split_blocks=True)
        except Exception as exc:  # pyarrow raises many types for a damaged file
            raise IngestError(str(path), f"unreadable Parquet: {exc}") from exc
    else:
        df = _read_csv(path, kind)
    cols = CONTRACT[kind]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise IngestError(str(path), f"missing columns {missing} for {kind}")
    if df.empty and kind not in MAY_BE_EMPTY:
        raise IngestError(str(path), f"no rows: a {kind} file must not be empty")
    extra = [c for c in df.columns if c not in cols]
    columns: dict[str, pd.Series] = {}  # built once, no copy of the columns that are fine
    for col, (family, _) in column_types(kind).items():
        given = df[col]
        parsed, bad = parse_column(given, family)
        if bad.any() or parsed is given:
            columns[col] = given  # as read: validate() quarantines the rows that do not parse
        elif parsed.isna().any() and family in ("int", "bool"):
            columns[col] = parsed  # float64 with NaN: validate() flags the missing values
        elif family == "int":
            columns[col] = parsed.astype("int64")
        elif family == "bool":
            columns[col] = parsed.astype(bool)
        elif family == "str":
            columns[col] = parsed.astype("str")  # parse_column already rejected undecodable text
        else:
            columns[col] = parsed
    del df
    out = pd.DataFrame(columns, copy=False)
    out.attrs["source_file"] = str(path)
    if extra:
        out.attrs["extra_columns"] = extra
    return out


def _day_and_format(name: str) -> tuple[Date, str] | None:
    m = _NAME.match(name)
    if not m:
        return None
    try:
        return Date.fromisoformat(m.group(1)), m.group(2)
    except ValueError:
        return None


def _scan(root: Path) -> dict[Date, dict[str, list[Path]]]:
    """Day -> kind -> its landing files (regular files named ``{day}.{format}``), every format."""
    out: dict[Date, dict[str, list[Path]]] = {}
    for kind in LANDING_KINDS:
        folder = root / kind
        if not folder.is_dir():
            continue
        for entry in sorted(folder.iterdir()):
            parsed = _day_and_format(entry.name)
            if parsed is not None and entry.is_file():
                out.setdefault(parsed[0], {}).setdefault(kind, []).append(entry)
    return dict(sorted(out.items()))


def available_days(root: str | Path) -> dict[Date, set[str]]:
    """Trading day -> kinds whose file is present (temporary, dot- and empty files ignored).

    A kind dropped in two formats counts as present: the day is complete, and its ingest fails
    naming both files (`find_landing_file`) instead of the day waiting unnoticed."""
    out: dict[Date, set[str]] = {}
    for day, kinds in _scan(Path(root)).items():
        have = {kind for kind, files in kinds.items() if any(f.stat().st_size for f in files)}
        if have:
            out[day] = have
    return out


def complete_days(root: str | Path, kinds: Iterable[str] = LANDING_KINDS) -> list[Date]:
    """Days whose files of every kind in `kinds` have landed: ready to be ingested (a day with
    two files for a kind included: see `landing_conflicts`)."""
    need = set(kinds)
    return [day for day, have in available_days(root).items() if need <= have]


def landing_conflicts(root: str | Path) -> dict[Date, dict[str, list[Path]]]:
    """Days with more than one file for a kind (e.g. an old Parquet and a corrected CSV), with
    those files: days whose ingest fails until one of the files is removed."""
    out: dict[Date, dict[str, list[Path]]] = {}
    for day, kinds in _scan(Path(root)).items():
        doubled = {kind: files for kind, files in kinds.items() if len(files) > 1}
        if doubled:
            out[day] = doubled
    return out


def landing_files(root: str | Path, kind: str, date: object) -> list[Path]:
    """Every landing file of `kind` for `date`, one per format present (normally one)."""
    candidates = (landing_path(root, kind, date, fmt) for fmt in FORMATS)
    return [path for path in candidates if path.is_file()]


def _describe(path: Path) -> str:
    """A file's name, size and modification time, for a message that asks to choose."""
    st = path.stat()
    modified = pd.Timestamp(st.st_mtime, unit="s")
    return f"{path.name} ({st.st_size:,} bytes, modified {modified:%Y-%m-%d %H:%M:%S} UTC)"


def _one_file(files: list[Path], what: str) -> Path | None:
    """The only file of `files`; two or more raise IngestError naming each of them."""
    if len(files) > 1:
        listed = " and ".join(_describe(f) for f in files)
        raise IngestError(
            str(files[0].parent),
            f"{len(files)} files for {what}: {listed}. Only one may be there: remove those "
            "that must not be ingested (none is read while there are several)",
        )
    return files[0] if files else None


def find_landing_file(root: str | Path, kind: str, date: object) -> Path | None:
    """The landing file of `kind` for `date` in whatever format it was dropped, if any.

    Two formats for the same day and kind raise IngestError naming both files: which one holds
    the right values is for the vendor or the operator to say, never for the reader to guess.
    """
    day = pd.Timestamp(date).strftime("%Y-%m-%d")
    return _one_file(landing_files(root, kind, date), f"{kind} on {day}")


def read_reference_universe(root: str | Path) -> pd.DataFrame:
    """The vendor's reference file of symbols (`universe.parquet` or `universe.csv` at the root
    of the landing zone), in UNIVERSE columns."""
    files = [Path(root) / n for n in ("universe.parquet", "universe.csv")]
    path = _one_file([f for f in files if f.is_file()], "the reference universe")
    if path is not None:
        df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        missing = [c for c in CONTRACT["universe"] if c not in df.columns]
        if missing:
            raise IngestError(str(path), f"missing columns {missing} for universe")
        df["list_date"] = pd.to_datetime(df["list_date"]).astype("datetime64[ns]")
        df["is_st"] = df["is_st"].astype(bool)
        return df[CONTRACT["universe"]]
    raise IngestError(str(root), "no universe.parquet or universe.csv in the landing zone")
