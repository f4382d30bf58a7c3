"""crm-import: an operator's spreadsheet import through the gateway, with a progress bar.

    uv run crm-import --gateway https://crm.example --token T --store S customers.xlsx
    uv run crm-import --gateway https://crm.example --token T --store S till.csv --kind purchases

Uploads the file (``POST /api/v1/imports``), follows the job (``GET /api/v1/imports/{id}``)
until it is done, and saves the row errors as CSV beside the file. Exit status: 0 done, 1 the
job failed, 2 the file or the request was refused.
"""

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_FINISHED = ("done", "failed")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(stderr=False, highlight=False)
    token = args.token or os.environ.get("CRM_TOKEN")
    if not token:
        console.print("A token is needed: --token or CRM_TOKEN")
        return 2
    path = Path(args.file)
    if not path.is_file():
        console.print(f"No such file: {path}")
        return 2
    base = args.gateway.rstrip("/") + "/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    # Uploading 50 MB over a slow line takes a while; reading answers does not.
    timeout = httpx.Timeout(30.0, write=600.0)
    with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
        with path.open("rb") as file:
            response = client.post(
                "/imports",
                data={"store_id": args.store, "kind": args.kind},
                files={"file": (path.name, file, "application/octet-stream")},
            )
        if response.status_code != 202:
            console.print(f"Refused ({response.status_code}): {_problem(response)}")
            return 2
        job = response.json()
        console.print(f"Import {job['id']} queued ({args.kind}, {path.name})")
        job = _follow(client, job, console=console, interval=args.interval)
        if job["status"] == "failed":
            console.print(f"Import failed: {job.get('failure')}")
            return 1
        console.print(
            f"Import done: {job['created']} written, {job['skipped']} skipped as imported "
            f"before, {job['error_count']} rows with errors"
        )
        if job["error_count"]:
            report = Path(args.report) if args.report else path.with_suffix(".errors.csv")
            with client.stream("GET", f"/imports/{job['id']}/errors") as errors:
                errors.raise_for_status()
                with report.open("wb") as out:
                    for chunk in errors.iter_bytes():
                        out.write(chunk)
            console.print(f"Error report: {report}")
    return 0


def _follow(
    client: httpx.Client, job: dict[str, Any], *, console: Console, interval: float
) -> dict[str, Any]:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[errors]} errors"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(job["status"], total=job.get("total"), errors=0)
        while job["status"] not in _FINISHED:
            time.sleep(interval)
            response = client.get(f"/imports/{job['id']}")
            response.raise_for_status()
            job = response.json()
            progress.update(
                task,
                description=job["status"],
                total=job["total"],
                completed=job["done"],
                errors=job["error_count"],
            )
    return job


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text
    return str(body.get("detail") or body)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-import", description="Import a spreadsheet of customers or purchase history."
    )
    parser.add_argument("file", help="the XLSX or CSV file")
    parser.add_argument("--gateway", required=True, help="the gateway's address")
    parser.add_argument("--token", help="a bearer token (default: CRM_TOKEN)")
    parser.add_argument("--store", required=True, help="the store to import into")
    parser.add_argument("--kind", choices=("customers", "purchases"), default="customers")
    parser.add_argument("--report", help="where to save the row errors (CSV)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    return parser


if __name__ == "__main__":
    sys.exit(main())
