"""The command line of the API keys (`make api-key NAME=...` runs its `create`):

    python -m quant_assets.api.keys_cli create --scope read --expires-days 90 --name pm-desk
    python -m quant_assets.api.keys_cli list
    python -m quant_assets.api.keys_cli revoke k0123456789abcdef

It works on the deployment's key store as the API service builds it (the same settings), so
a key created here is one the running service accepts.
"""

from __future__ import annotations

import argparse
import sys

from quant_assets.api.app import build_services
from quant_assets.api.config import config_from_settings
from quant_assets.api.keys import KEY_ID, SCOPES, KeyStore


def key_store_from_settings() -> KeyStore:
    """The deployment's key store, as the API service builds it."""
    return build_services(config_from_settings()).keys


def main(argv: list[str] | None = None) -> int:
    """`create`, `list` and `revoke` on the deployment's keys (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m quant_assets.api.keys_cli", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--scope", choices=SCOPES, default="read")
    create.add_argument("--expires-days", type=int, default=90)
    create.add_argument("--name", required=True, help="who or what uses the key")
    sub.add_parser("list", help="the keys: ids, names, scopes, expiry, revoked (no secrets)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    args = parser.parse_args(argv)
    keys = key_store_from_settings()
    if args.command == "create":
        try:
            record, key = keys.create(args.name, args.scope, args.expires_days)
        except ValueError as error:
            parser.error(str(error))
        print(f"key id:  {record.key_id}")
        print(f"scope:   {record.scope}")
        print(f"expires: {record.expires_at:%Y-%m-%d %H:%M} UTC")
        print(f"key:     {key}")
        print("The key is shown this once and stored only hashed: keep it now.")
        return 0
    if args.command == "list":
        rows = keys.list()
        print(f"{'key id':<18} {'name':<24} {'scope':<6} {'expires (UTC)':<17} revoked")
        for r in rows:
            revoked = f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked and r.revoked_at else "no"
            print(
                f"{r.key_id:<18} {r.name[:24]:<24} {r.scope:<6} "
                f"{r.expires_at:%Y-%m-%d %H:%M} {revoked}"
            )
        return 0
    if not KEY_ID.fullmatch(args.key_id) or not keys.revoke(args.key_id):
        print(f"no key {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
