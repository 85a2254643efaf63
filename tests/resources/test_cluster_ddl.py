"""The cluster DDL of every table spec of the project, as text and as ClickHouse reads it.

No ClickHouse server installs here, so the statements are checked three ways: their text
(local replicated table + Distributed table, engine mapping, ON CLUSTER), ClickHouse's own
parser (chDB's `EXPLAIN AST`, ON CLUSTER included), and chDB creating them (without ON CLUSTER,
which needs a server's DDL worker) under a config that declares the cluster, its macros and an
in-memory Keeper: engine arguments, macros, the Distributed table and its sharding key are then
validated by ClickHouse itself, and the two tables' columns compared. The single-node DDL (no
cluster configured) is checked to be what it always was.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quant_assets.market.contract.tables import QUARANTINE
from resources.clickhouse import (
    ClickHouseResource,
    TableSpec,
    cluster_ddl,
    local_name,
    replicated_engine,
    sharding_key,
)
from resources.publishing import PUBLICATIONS

ROOT = Path(__file__).resolve().parents[2]
DB, CLUSTER = "quant", "quant"


def _project_specs() -> dict[str, TableSpec]:
    """Every TableSpec defined at module level in a file that calls `TableSpec(`."""
    specs: dict[str, TableSpec] = {}
    for folder in ("quant_assets", "resources"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "TableSpec(" not in path.read_text() or path.name == "clickhouse.py":
                continue
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            found = [v for v in vars(module).values() if isinstance(v, TableSpec)]
            found += [s for v in vars(module).values() if isinstance(v, dict) for s in v.values()]
            found = [s for s in found if isinstance(s, TableSpec)]
            assert found, f"{path} calls TableSpec( but defines no spec at module level"
            for spec in found:
                specs.setdefault(spec.name, spec)
    return specs


SPECS = _project_specs()


def test_the_project_has_its_tables():
    assert len(SPECS) >= 30
    assert {"raw_trades", "quarantine", "publications", "stored_partitions"} <= set(SPECS)


def test_single_node_ddl_is_unchanged():
    """Without a cluster, the DDL is the one every existing database was created with."""
    assert ClickHouseResource(dsn="chdb:///tmp/unused").cluster is None
    assert PUBLICATIONS.ddl(DB) == (
        "CREATE TABLE IF NOT EXISTS quant.publications (\n"
        "  `publication` String,\n"
        "  `state` LowCardinality(String),\n"
        "  `run_id` String,\n"
        "  `parts` String,\n"
        "  `written_at` DateTime64(3, 'UTC')\n"
        ")\n"
        "ENGINE = ReplacingMergeTree(written_at)\n"
        "ORDER BY (publication)"
    )
    assert QUARANTINE.ddl(DB) == (
        "CREATE TABLE IF NOT EXISTS quant.quarantine (\n"
        "  `date` Date,\n"
        "  `kind` LowCardinality(String),\n"
        "  `rule` LowCardinality(String),\n"
        "  `row_number` UInt64,\n"
        "  `symbol` String,\n"
        "  `detail` String,\n"
        "  `row_json` String CODEC(ZSTD(3)),\n"
        "  `source_file` String\n"
        ")\n"
        "ENGINE = MergeTree\n"
        "PARTITION BY (date, kind)\n"
        "ORDER BY (kind, rule, row_number)"
    )
    for spec in SPECS.values():
        ddl = spec.ddl(DB)
        assert ddl == spec.ddl(DB, None)
        assert ddl.startswith(f"CREATE TABLE IF NOT EXISTS {DB}.{spec.name} (\n")
        assert "ON CLUSTER" not in ddl and "Replicated" not in ddl and "Distributed" not in ddl
        assert f"\nENGINE = {spec.engine}\n" in ddl


def test_engine_mapping():
    path = "/clickhouse/tables/{shard}/quant/t"
    assert replicated_engine("MergeTree", path) == f"ReplicatedMergeTree('{path}', '{{replica}}')"
    assert replicated_engine("MergeTree()", path) == f"ReplicatedMergeTree('{path}', '{{replica}}')"
    assert (
        replicated_engine("ReplacingMergeTree(written_at)", path)
        == f"ReplicatedReplacingMergeTree('{path}', '{{replica}}', written_at)"
    )
    assert (
        replicated_engine("SummingMergeTree((a, b))", path)
        == f"ReplicatedSummingMergeTree('{path}', '{{replica}}', (a, b))"
    )
    for engine in ("ReplicatedMergeTree('/x', 'r')", "Memory", "Log"):
        with pytest.raises(ValueError, match="not a non-replicated MergeTree"):
            replicated_engine(engine, path)


def test_local_names_keep_the_run_tag_last():
    assert local_name("quant.raw_trades") == "quant.raw_trades_local"
    tag = "0123456789abcdef0123456789abcdef"
    staging = f"quant.raw_trades__staging_20240603_{tag}"
    assert local_name(staging) == f"quant.raw_trades_local__staging_20240603_{tag}"
    assert local_name(staging).rsplit("_", 1)[-1] == tag  # what publishing.recover reads


def test_sharding_key_keeps_a_partition_on_one_shard():
    assert sharding_key(SPECS["raw_trades"]) == "cityHash64(date)"
    assert sharding_key(SPECS["quarantine"]) == "cityHash64(date, kind)"
    # unpartitioned ReplacingMergeTree logs: rows of one key on one shard, so FINAL is exact
    assert sharding_key(SPECS["publications"]) == "cityHash64(publication)"
    assert sharding_key(SPECS["stored_partitions"]) == "cityHash64(table, slice, date)"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_cluster_ddl_text(name: str):
    spec = SPECS[name]
    local, distributed = cluster_ddl(spec, DB, CLUSTER)
    assert spec.ddl(DB, CLUSTER) == f"{local};\n{distributed}"
    single = spec.ddl(DB)
    # the local table: the single-node statement with its name, ON CLUSTER and engine changed
    assert local.startswith(
        f"CREATE TABLE IF NOT EXISTS {DB}.{name}_local ON CLUSTER {CLUSTER} (\n"
    )
    engine = re.search(r"^ENGINE = (.*)$", local, re.M).group(1)
    family, args = re.fullmatch(r"(\w*MergeTree)(?:\((.*)\))?", spec.engine).groups()
    expected = [f"'/clickhouse/tables/{{shard}}/{DB}/{name}'", "'{replica}'", *filter(None, [args])]
    assert engine == f"Replicated{family}({', '.join(expected)})"
    assert (
        local.replace(f"{name}_local ON CLUSTER {CLUSTER}", name).replace(engine, spec.engine)
        == single
    )
    # the Distributed table: the same columns (AS the local table), every query's name
    assert distributed == (
        f"CREATE TABLE IF NOT EXISTS {DB}.{name} ON CLUSTER {CLUSTER} AS {DB}.{name}_local\n"
        f"ENGINE = Distributed({CLUSTER}, {DB}, {name}_local, {sharding_key(spec)})"
    )


# chDB with a config declaring the cluster `quant` (this process as its one replica), the
# macros and ClickHouse's in-memory Keeper. Replicated tables are read-only in chDB (no
# replication threads), so only creation is checked. `os._exit`: chDB's in-memory Keeper aborts
# at interpreter shutdown (measured with chdb 4.4 / ClickHouse 26.9).
CHDB_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from chdb import session
    statements, folder = json.load(sys.stdin), sys.argv[1]
    config = os.path.join(folder, "config.xml")
    with open(config, "w") as f:
        f.write('''<clickhouse><tcp_port>19000</tcp_port>
          <zookeeper><implementation>testkeeper</implementation></zookeeper>
          <macros><shard>1</shard><replica>r1</replica></macros>
          <remote_servers><quant><shard><internal_replication>true</internal_replication>
            <replica><host>localhost</host><port>19000</port></replica>
          </shard></quant></remote_servers></clickhouse>''')
    s = session.Session(f"file:{os.path.join(folder, 'db')}?config-file={config}")
    out = {"parsed": [], "errors": [], "columns": {}}
    for sql in statements["parse"]:
        try:
            s.query("EXPLAIN AST " + sql, "TSV")
            out["parsed"].append(sql)
        except Exception as e:
            out["errors"].append(f"parse: {e}: {sql}")
    s.query("CREATE DATABASE IF NOT EXISTS quant")
    for sql in statements["create"]:
        try:
            s.query(sql)
        except Exception as e:
            out["errors"].append(f"create: {e}: {sql}")
    for name in statements["describe"]:
        try:
            described = s.query(f"DESCRIBE TABLE quant.{name}", "JSONCompact")
            out["columns"][name] = [row[:4] for row in json.loads(str(described))["data"]]
        except Exception as e:
            out["errors"].append(f"describe {name}: {e}")
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)
    """
)


def test_clickhouse_parses_and_creates_the_cluster_ddl(tmp_path: Path):
    parse, create, describe = [], [], []
    for name, spec in SPECS.items():
        statements = [*cluster_ddl(spec, DB, CLUSTER)]
        parse += statements
        create += [s.replace(f" ON CLUSTER {CLUSTER}", "") for s in statements]
        describe += [name, f"{name}_local"]
    # a day's staging pair (the live table's stored columns) and what a publication runs
    staging = f"raw_trades__staging_20240603_{'ab' * 16}"
    staging_ddl = cluster_ddl(SPECS["raw_trades"], DB, CLUSTER, staging, like="raw_trades")
    create += [s.replace(f" ON CLUSTER {CLUSTER}", "") for s in staging_ddl]
    describe += [staging, local_name(staging)]
    parse += [
        *staging_ddl,
        f"SYSTEM SYNC REPLICA ON CLUSTER {CLUSTER} {local_name(f'{DB}.{staging}')}",
        f"ALTER TABLE {DB}.raw_trades_local ON CLUSTER {CLUSTER} REPLACE PARTITION "
        f"'2024-06-03' FROM {local_name(f'{DB}.{staging}')}, DROP PARTITION '2024-06-04'",
        f"DROP TABLE IF EXISTS {local_name(f'{DB}.{staging}')} ON CLUSTER {CLUSTER} SYNC",
        f"CREATE DATABASE IF NOT EXISTS {DB} ON CLUSTER {CLUSTER}",
    ]
    done = subprocess.run(
        [sys.executable, "-c", CHDB_SCRIPT, str(tmp_path)],
        input=json.dumps({"parse": parse, "create": create, "describe": describe}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["errors"] == []
    assert len(out["parsed"]) == len(parse)
    for name, spec in SPECS.items():
        local, distributed = out["columns"][f"{name}_local"], out["columns"][name]
        assert [c[0] for c in local] == list(spec.columns)
        assert [c[1] for c in local] == [spec.column_type(c) for c in spec.columns]
        assert distributed == local, name  # names, types and defaults
    for table in (staging, local_name(staging)):
        assert out["columns"][table] == out["columns"]["raw_trades_local"], table
