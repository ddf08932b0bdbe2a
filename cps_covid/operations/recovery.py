"""``cps-covid rebuild`` and ``cps-covid rollback``: the archive and the bucket's versions put to use."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cps_covid.errors import CpsCovidError
from cps_covid.publishing import ledger_store
from cps_covid.rules import applying, history, publish_plan
from cps_covid.settings import Settings
from cps_covid.systems import aws, cloudfront, s3


@dataclass
class RebuildReport:
    replayed: list[str] = field(default_factory=list)
    identical: bool = False
    differences: list[str] = field(default_factory=list)

    def text(self) -> str:
        verdict = "identical to the published history" if self.identical else "DIFFERS from the published history"
        lines = [f"replayed {len(self.replayed)} update(s): {verdict}"]
        lines += [f"  {u}" for u in self.replayed]
        lines += [f"  differs: {d}" for d in self.differences[:20]]
        return "\n".join(lines)


def rebuild(settings: Settings, from_version: str, out: Path | None = None) -> RebuildReport:
    """Replay the archived payloads applied after ``from_version`` of the per-school table."""
    bucket = s3.bucket_of(settings)
    entries = [e for e in ledger_store.read(bucket)[0].entries if e.finished and not e.rolled_back]
    start = next((i + 1 for i, e in enumerate(entries) if e.versions.get(publish_plan.SCHOOLS_KEY) == from_version), 0)
    known = {v["VersionId"] for v in s3.versions(bucket, publish_plan.SCHOOLS_KEY)}
    if from_version not in known:
        raise CpsCovidError(f"s3://{settings.bucket}/{publish_plan.SCHOOLS_KEY} has no version {from_version}")
    table = s3.get_version(bucket, publish_plan.SCHOOLS_KEY, from_version)
    report = RebuildReport()
    for entry in entries[start:]:
        payload = bucket.get(entry.raw_key)
        if payload is None:
            raise CpsCovidError(f"update {entry.id}: archived payload {entry.raw_key} is missing")
        result = applying.replay(entry, payload.body, table, None)
        table = history.csv_bytes(result.schools)
        report.replayed.append(f"{entry.id}: {entry.raw_key}")
    published = bucket.get(publish_plan.SCHOOLS_KEY)
    report.identical = published is not None and published.body == table
    if not report.identical and published is not None:
        ours = history.read_table(table, "rebuilt").set_index("CPS_School_ID")
        theirs = history.read_table(published.body, "published").set_index("CPS_School_ID")
        for school in sorted(set(ours.index) ^ set(theirs.index)):
            report.differences.append(f"school {school} only in one of them")
        common = ours.index.intersection(theirs.index)
        for column in [c for c in ours.columns if c in theirs.columns]:
            moved = common[ours.loc[common, column].astype(str) != theirs.loc[common, column].astype(str)]
            report.differences += [
                f"{s!s} {column}: rebuilt {ours.at[s, column]!s}, published {theirs.at[s, column]!s}" for s in moved
            ]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / Path(publish_plan.SCHOOLS_KEY).name).write_bytes(table)
    return report


def rollback(settings: Settings, to: datetime, dry_run: bool = False) -> list[str]:
    """Make the versions current at ``to`` current again; later updates are marked rolled back."""
    bucket = s3.bucket_of(settings)
    restored = []
    for key in publish_plan.PUBLISHED_KEYS:
        found = s3.versions(bucket, key)
        if not found:
            continue
        target = next((v for v in found if v["LastModified"] <= to), None)
        if target is None or target["VersionId"] == found[0]["VersionId"]:
            continue
        restored.append(key)
        if not dry_run:
            body = s3.get_version(bucket, key, target["VersionId"])
            content_type = publish_plan.HTML_TYPE if key.endswith(".html") else publish_plan.CSV_TYPE
            bucket.put(
                key,
                body,
                content_type=content_type,
                tags=dict(settings.tags) | {"rollback-to": target["VersionId"]},
                if_match=found[0]["ETag"],
            )
    if restored and not dry_run:
        ledger, etag = ledger_store.read(bucket)
        if etag is not None:
            ledger_store.write(bucket, ledger.rolled_back_after(to), etag)
        client = aws.client("cloudfront", settings.aws_credentials_block)
        cloudfront.invalidate(
            client, settings.distribution_id, [f"/{k}" for k in restored], f"rollback-{to.isoformat()}"
        )
    return restored
