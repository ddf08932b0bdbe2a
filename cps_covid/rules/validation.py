"""Run the Great Expectations suites kept as JSON in ``expectations/``.

A suite's expectations with ``severity: warning`` report without stopping the
run; any other failure stops it, with every failed expectation and sample rows.
Great Expectations is imported here only, when a suite first runs: it is the
slowest import of the stack.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cps_covid.errors import InputError
from cps_covid.rules.schema import SCHOOL, SCHOOL_ID

EXPECTATIONS_DIR = Path(__file__).resolve().parents[2] / "expectations"
ROW = "_row"
IDENTIFYING = (ROW, "column", SCHOOL_ID, SCHOOL, "date")
"""Columns that, when a frame has them, say which row (cell, school, date) a failure is about."""
SAMPLES = 5


@dataclass(frozen=True)
class Finding:
    """One failed expectation, described for a person."""

    suite: str
    source: str
    expectation: str
    columns: tuple[str, ...]
    why: str
    unexpected_count: int | None
    samples: tuple[str, ...]
    observed: Any = None

    def __str__(self) -> str:
        where = f" on {', '.join(self.columns)}" if self.columns else ""
        text = f"{self.source}: {self.expectation}{where} failed"
        if self.why:
            text += f" ({self.why})"
        if self.unexpected_count:
            text += f": {self.unexpected_count} unexpected value(s)"
        if self.samples:
            text += ", e.g. " + "; ".join(self.samples)
        elif self.observed is not None:
            text += f": observed {self.observed!r}"
        return text


@dataclass
class ValidationReport:
    suite: str
    source: str
    evaluated: int
    failures: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    result: Any = field(default=None, repr=False, compare=False)
    """Great Expectations' own result, for its Data Docs page (``data_docs_page``)."""

    @property
    def success(self) -> bool:
        return not self.failures

    def markdown(self) -> str:
        lines = [f"### Suite `{self.suite}` on `{self.source}`: {self.evaluated} expectations"]
        for label, items in (("Failed", self.failures), ("Warning", self.warnings)):
            lines += [f"- **{label}**: {item}" for item in items]
        if self.success and not self.warnings:
            lines.append("- all passed")
        return "\n".join(lines)


class ValidationFailed(InputError):
    def __init__(self, reports: list[ValidationReport]) -> None:
        self.reports = reports
        failures = [str(f) for r in reports for f in r.failures]
        super().__init__(f"validation failed, nothing was written: {' | '.join(failures)}")


def suite_path(name: str) -> Path:
    return EXPECTATIONS_DIR / f"{name}.json"


@functools.cache
def load_suite(name: str) -> Any:
    """Load a suite from its JSON file; refuse one that GE silently shortened."""
    from great_expectations.core import ExpectationSuite

    spec = json.loads(suite_path(name).read_text())
    suite = ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta", {}))
    if len(suite.expectations) != len(spec["expectations"]):
        raise RuntimeError(
            f"{suite_path(name)}: {len(spec['expectations'])} expectations in the file, "
            f"{len(suite.expectations)} understood by Great Expectations"
        )
    return suite


@functools.cache
def _batch_definition() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("cps-covid").add_dataframe_asset("frame")
    return asset.add_batch_definition_whole_dataframe("whole-frame")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _samples(result: dict[str, Any], columns: tuple[str, ...]) -> tuple[str, ...]:
    indexed = result.get("unexpected_index_list") or []
    out = []
    for item in indexed[:SAMPLES]:
        if isinstance(item, dict) and ROW in item:
            values = ", ".join(f"{c}={_plain(item[c])!r}" for c in item if c != ROW)
            out.append(f"row {item[ROW]}: {values}")
        else:
            out.append(repr(item))
    if not out:
        out = [repr(v) for v in (result.get("partial_unexpected_list") or [])[:SAMPLES]]
    return tuple(out)


def validate(frame: pd.DataFrame, suite_name: str, source: str) -> ValidationReport:
    """Validate ``frame`` against a suite; ``_row`` (if present) and ``IDENTIFYING`` columns name rows in the report."""
    suite = load_suite(suite_name)
    batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
    result_format: dict[str, Any] = {"result_format": "COMPLETE", "partial_unexpected_count": SAMPLES}
    if ROW in frame.columns:
        result_format["unexpected_index_column_names"] = [c for c in IDENTIFYING if c in frame.columns]
    result = batch.validate(suite, result_format=result_format)
    report = ValidationReport(suite=suite_name, source=source, evaluated=len(result.results), result=result)
    for item in result.results:
        if item.success:
            continue
        config = item.expectation_config
        kwargs = config.kwargs
        columns = tuple(str(kwargs[k]) for k in ("column", "column_A", "column_B") if k in kwargs) or tuple(
            kwargs.get("column_list", ())
        )
        raised = (item.exception_info or {}).get("raised_exception")
        why = (config.meta or {}).get("why", "")
        if raised:
            why = f"{why}; could not be evaluated: {item.exception_info.get('exception_message')}".strip("; ")
        finding = Finding(
            suite=suite_name,
            source=source,
            expectation=config.type,
            columns=columns,
            why=why,
            unexpected_count=item.result.get("unexpected_count"),
            samples=_samples(item.result, columns),
            observed=item.result.get("observed_value"),
        )
        severity = str(getattr(config, "severity", "critical")).lower()
        (report.warnings if "warning" in severity or "info" in severity else report.failures).append(finding)
    return report


def data_docs_page(report: ValidationReport, run_name: str) -> bytes:
    """The validation as Great Expectations' Data Docs show it: one HTML page, rendered by GE's own renderers.

    The page takes its styles and icons from public CDNs, as every Data Docs page does.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView

    result = report.result
    result.meta["run_id"] = RunIdentifier(run_name=run_name)
    document = ValidationResultsPageRenderer().render(result)
    return DefaultJinjaPageView().render(document, show_how_to_buttons=False).encode("utf-8")


def stop_on_failures(reports: list[ValidationReport]) -> list[ValidationReport]:
    """The reports, or ``ValidationFailed`` with all of them when any suite failed."""
    if any(not r.success for r in reports):
        raise ValidationFailed(reports)
    return reports
