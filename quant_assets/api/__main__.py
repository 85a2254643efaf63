"""Serve the API: `python -m quant_assets.api [--host 127.0.0.1] [--port 8000]`.

Loopback by default. For TLS, run behind a TLS-terminating proxy (then pass `--proxy-headers`
so the audit sees the client's address) or give uvicorn a certificate (`--ssl-certfile`,
`--ssl-keyfile`).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quant_assets.api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    parser.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For from --forwarded-allow-ips (behind a TLS proxy)",
    )
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    args = parser.parse_args(argv)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        parser.error("--ssl-certfile and --ssl-keyfile go together")
    import uvicorn

    from resources.settings import check_environment

    check_environment()
    uvicorn.run(
        "quant_assets.api.app:app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        server_header=False,
        access_log=False,  # every request is in the audit table instead
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
