"""The attrition funnel as a chart (`eligib screen --plot funnel.png`): the patients remaining after the
start and after each criterion that removes anyone, as horizontal bars, with what each step removed.
matplotlib is an optional extra (`pip install 'eligib[plot]'`), imported only here."""

from __future__ import annotations

from pathlib import Path

from eligib.language.diagnostics import DiagnosticError, error
from eligib.screen.attrition import Attrition

FORMATS = (".png", ".svg", ".pdf")


def plot_funnel(report: Attrition, path: str) -> None:
    """Write the funnel to `path` (.png, .svg or .pdf)."""
    if Path(path).suffix.lower() not in FORMATS:
        raise ValueError(f"a chart is written as .png, .svg or .pdf, not {path!r}")
    try:
        import matplotlib
    except ImportError:
        raise DiagnosticError([error("missing-extra", "drawing the funnel needs matplotlib", None,
                                     help="pip install 'eligib[plot]'")]) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = report.patients - report.verdicts["error"]
    labels, counts = [f"screened ({report.verdicts['error']:,} rows with errors apart)"], [start]
    for step in report.steps:
        if step.removed:
            labels.append(f"{step.criterion} ({step.kind}): -{step.removed:,}")
            counts.append(step.remaining)
    labels.append(f"eligible {report.verdicts['eligible']:,}, undetermined {report.verdicts['undetermined']:,}")
    counts.append(report.verdicts["eligible"] + report.verdicts["undetermined"])
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in an SVG
        figure, axes = plt.subplots(figsize=(9, 1.2 + 0.38 * len(labels)))
        positions = list(range(len(labels)))[::-1]
        axes.barh(positions, counts, color="#4878a8")
        axes.set_yticks(positions, labels)
        for position, count in zip(positions, counts, strict=True):
            axes.text(count, position, f" {count:,}", va="center")
        axes.set_xlabel("patients remaining")
        axes.set_title(f"Attrition: {report.protocol}, {report.patients:,} patients")
        axes.set_xlim(0, max([*counts, 1]) * 1.15)
        figure.tight_layout()
        try:
            figure.savefig(path)
        except OSError as exc:
            raise DiagnosticError([error("io", f"cannot write the chart to `{path}`: {exc.strerror or exc}", None,
                                         help="give a file path in a folder you can write to")]) from None
        finally:
            plt.close(figure)
