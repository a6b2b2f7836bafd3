#!/usr/bin/env python3
"""mark_critical.py: an application marks threads latency-critical for the app_priority
policy, through the Python module sclc generates from the policy (ctypes over the system's
libbpf; nothing to compile).

    sclc build examples/app_priority.scl --emit python -o examples/apps/app_priority.py
    sclc load examples/app_priority.scl --pin prio        (as root)
    python3 examples/apps/mark_critical.py prio 1234 1240     mark threads 1234 and 1240
    python3 examples/apps/mark_critical.py --unmark prio 1234 unmark thread 1234
    python3 examples/apps/mark_critical.py --query prio 1240  print whether 1240 is marked

With no TID it acts on its own calling thread, as an application does for its RPC
dispatcher or log writer: see mark_this_thread(). Exit status: 0, 1 when the kernel
refused (the message says why), 2 for a usage error.
"""

import argparse
import errno
import sys
import threading

import app_priority  # generated: sclc build examples/app_priority.scl --emit python


def mark_this_thread(critical):
    """What an application calls from the thread it wants served first. `critical` is the
    map, opened once with app_priority.LatencyCriticalMap(deployment)."""
    critical.set(threading.get_native_id(), 1)


def main():
    parser = argparse.ArgumentParser(
        description="Mark (unmark, query) threads, or the calling thread, latency-critical in the app_priority policy pinned as DEPLOYMENT."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--unmark", action="store_true", help="unmark the threads")
    mode.add_argument("--query", action="store_true", help="print whether the threads are marked")
    parser.add_argument("deployment", metavar="DEPLOYMENT", help="the name given to `sclc load --pin`")
    parser.add_argument("tids", metavar="TID", type=int, nargs="*", help="thread ids (default: the calling thread)")
    args = parser.parse_args()

    try:
        critical = app_priority.LatencyCriticalMap(args.deployment)
    except (OSError, ValueError) as e:
        hint = " (is an app_priority policy deployed under that name?)" if getattr(e, "errno", None) == errno.EPROTO else ""
        print(f"mark_critical: cannot open map latency_critical of `{args.deployment}`: {e}{hint}", file=sys.stderr)
        return 1
    status = 0
    with critical:
        if not args.tids and not (args.unmark or args.query):
            mark_this_thread(critical)
            print(f"marked {threading.get_native_id()} (this thread)")
        for tid in args.tids:
            try:
                if args.unmark:
                    print(f"unmarked {tid}" if critical.delete(tid) else f"{tid} was not marked")
                elif args.query:
                    print(f"{tid} {'critical' if critical.get(tid) else 'not critical'}")
                else:
                    critical.set(tid, 1)
                    print(f"marked {tid}")
            except ValueError as e:
                print(f"mark_critical: thread {tid}: {e}", file=sys.stderr)
                return 2
            except OSError as e:
                print(f"mark_critical: thread {tid}: {e}", file=sys.stderr)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
