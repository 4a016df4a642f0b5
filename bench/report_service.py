"""docs/benchmarks.md, section 6: the local service under `sendguard demo` — the method, the table,
the bottleneck, and the demo's own run."""

from __future__ import annotations

from typing import Any

from bench.markdown import para, table

SERVICE_METHOD = """\
Code: `bench/service.py`. The service is the demo's own: `adapters.local.service.LocalService` with
the options `adapters.local.demo.DemoOptions` gives it — embedded moto server on loopback, the fault proxy
in front of it (at fault rate 0 here), the local API gateway, the real submit function with its JSON
logs on (to /dev/null). Clients on keep-alive connections POST new messages over real HTTP; latency is
timed at the client. The gateway's handler is wrapped to time the function and its AWS calls, the
process's CPU time is read around the load, and a route that makes no AWS call is timed after it on
one connection (30 requests): the floor of the HTTP path. `sendguard demo --json` reports no latency
fields (only its phases' seconds), hence this harness. The last two setups are a diagnosis: the
gateway's and the proxy's `http.server` handlers patched, for that run only, to write each answer in
one write (`wbufsize = -1`)."""


def render(section: dict[str, Any]) -> list[str]:
    rows = section["rows"]
    out = ["## 6. The local service under `sendguard demo`", "", SERVICE_METHOD, ""]
    out += table(
        (
            "Setup",
            "Requests",
            "Requests/s",
            "p50 ms",
            "p99 ms",
            "Function p50 ms",
            "AWS calls' share of it",
            "CPU cores busy",
            "No-AWS route p50 ms",
        ),
        [
            (
                r["label"],
                r["requests"],
                f"**{r['requests_per_second']}**",
                f"**{r['p50_ms']:.1f}**",
                f"**{r['p99_ms']:.1f}**",
                f"{r['function_p50_ms']:.1f}",
                f"{r['aws_share'] * 100:.1f} %" if r["aws_share"] is not None else "n/a",
                r["cpu_cores_busy"],
                f"{r['no_aws_route_p50_ms']:.1f}",
            )
            for r in rows
        ],
    )
    out += _bottleneck(rows)
    demo = section.get("demo")
    if demo:
        answers = ", ".join(f"{k} ×{v}" for k, v in demo["answers"].items())
        out += para(
            [
                f"`{demo['command']}` as a person runs it ({demo['requests']} requests from",
                f"{demo['concurrency']} clients, fault rate {demo['fault_rate']}, some replays,",
                "conflicts and",
                f"invalid bodies): verdict {'OK' if demo['ok'] else 'FAILED'} (exit {demo['exit_code']});",
                f"answers {answers}; {demo['faults_injected']} faults in {demo['aws_requests']} AWS",
                "requests;",
                f"load phase {demo['seconds']['load']} s (service start-up included:",
                f"{demo['requests_per_second_load']} requests/s), settling {demo['seconds']['settle']} s,",
                f"total {demo['seconds']['total']} s.",
            ]
        )
    return out


def _bottleneck(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["proxy"], r["clients"], r["buffered"]): r for r in rows}
    many, one = by.get((True, 8, False)), by.get((True, 1, False))
    bare, fixed_many, fixed_one = by.get((False, 8, False)), by.get((True, 8, True)), by.get((True, 1, True))
    if not (many and one and bare and fixed_many and fixed_one):
        return []
    return para(
        [
            "**Bottleneck.** Under load it is the CPU of one Python process, and in it mostly moto: the",
            "clients, the gateway, the function, the fault proxy and the moto server all run in one",
            f"interpreter, which keeps {many['cpu_cores_busy']} of the machine's cores busy with 8",
            f"clients (the GIL); {many['aws_share'] * 100:.1f} % of the function's time is spent inside",
            "AWS calls, waiting on moto, which emulates DynamoDB and SQS in that same interpreter",
            "(section 2 measures sendguard's own work per request, outside them).",
            "Without the fault proxy, which hands moto one request at a time, throughput is",
            f"{bare['requests_per_second']} requests/s against {many['requests_per_second']}:",
            _proxy_verdict(many, bare),
            "The latency floor has another cause: a route that makes",
            f"no AWS call takes {many['no_aws_route_p50_ms']:.0f} ms through the gateway, because",
            "the gateway and the fault proxy (`http.server` handlers with an unbuffered `wfile`)",
            "write each answer's",
            "headers and body in two writes, and the body waits for the peer's delayed ACK (about 40 ms).",
            f"With each answer in one write that route takes {fixed_one['no_aws_route_p50_ms']:.1f} ms, and",
            f"one client's p50 drops from {one['p50_ms']:.0f} ms to {fixed_one['p50_ms']:.0f} ms",
            f"({one['requests_per_second']} → {fixed_one['requests_per_second']} requests/s); with 8 clients",
            f"the CPU limit stays ({fixed_many['requests_per_second']} requests/s). Neither limit is",
            "sendguard's: on AWS each function runs in its own container against DynamoDB and SQS.",
        ]
    )


def _proxy_verdict(proxied: dict[str, Any], bare: dict[str, Any]) -> str:
    gain = bare["requests_per_second"] / proxied["requests_per_second"] - 1
    if gain < 0.1:
        return "the proxy's serialization is not what limits it."
    return (
        f"the proxy's serialization costs {gain * 100:.0f} % of the throughput here, but without it the"
        f" process is just as CPU-bound ({bare['cpu_cores_busy']} cores busy)."
    )
