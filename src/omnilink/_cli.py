"""The ``omnilink`` command: list installed adapters, run the end-to-end demo."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._plugins import PluginHost


def _adapters(args: argparse.Namespace) -> int:
    host = PluginHost(strict=False)
    host.load_entry_points()
    specs = host.channel_specs()
    if args.json:
        print(
            json.dumps(
                {
                    name: {
                        "distribution": spec.distribution,
                        "summary": spec.summary,
                        "capabilities": json.loads(spec.capabilities.model_dump_json()),
                    }
                    for name, spec in sorted(specs.items())
                },
                indent=2,
            )
        )
    else:
        if not specs:
            print("no adapters installed (pip install omnilink-sms, omnilink-email, …)")
        for name, spec in sorted(specs.items()):
            caps = spec.capabilities
            limit = f"{caps.text_max} {caps.length_unit}" if caps.text_max else "no limit"
            media = (
                f"{caps.media.max_count} × {'/'.join(sorted(caps.media.types))}"
                if caps.media.max_count
                else "none"
            )
            window = f"{caps.window.standard}" if caps.window else "none"
            print(f"{name:<10} {spec.distribution or '?':<20} {spec.summary}")
            print(
                f"{'':<10} text: {limit}; media: {media}; quick replies: {caps.quick_replies.max_count}; "
                f"starts conversations: {'yes' if caps.can_start_conversation else 'no'}; window: {window}"
            )
    for broken in host.broken:
        print(f"broken plugin {broken.name} ({broken.distribution}): {broken.error}", file=sys.stderr)
    return 1 if host.broken and args.strict else 0


def _demo(args: argparse.Namespace) -> int:
    import anyio

    from ._demo import run_demo

    return anyio.run(run_demo, args.database, args.keep)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="omnilink", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    adapters = sub.add_parser("adapters", help="list installed adapters and their capabilities")
    adapters.add_argument("--json", action="store_true", help="print JSON")
    adapters.add_argument("--strict", action="store_true", help="exit 1 when a plugin is broken")
    adapters.set_defaults(func=_adapters)
    demo = sub.add_parser("demo", help="run the end-to-end demo against the bundled fakes")
    demo.add_argument("--database", default="omnilink-demo.sqlite3", help="SQLite file (recreated)")
    demo.add_argument("--keep", action="store_true", help="keep the database afterwards")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
