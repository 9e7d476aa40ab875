"""Score a CSV of cases with the serving model.

    python -m jobs.predict --model breast_cancer --csv cases.csv --out scored.csv
    python -m jobs.predict --model iris_random_forest --csv flowers.csv      # CSV to stdout

Input columns are named exactly as scikit-learn's feature_names (e.g. `mean radius`);
columns the model does not use are ignored. Output: one row per input row with `row`
(0-based input position), the result (label and probability_<class>, or probability with
interval lower/upper), `model`, `model_version`, and `error` (empty when the row was scored). A bad
row gets a message in `error`; the others are still scored. `breast_cancer` uses the
Bayesian champion, else the fallback stub (`is_fallback` = true).

One JSON summary line goes to stdout when --out is given (to stderr otherwise). Exit codes:
0 every row scored, 1 nothing scored (no model, unreadable CSV), 2 bad arguments or
settings, 3 some rows had errors (the output is still written).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_ROW_ERRORS = 0, 1, 2, 3
log = logging.getLogger("jobs.predict")


def _parser(choices: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jobs.predict",
        description="Score a CSV with the serving (champion) model of the MLflow registry.",
        epilog="Exit codes: 0 all rows scored, 1 nothing scored, 2 bad arguments or settings, 3 some rows had errors.",
    )
    parser.add_argument("--model", required=True, choices=list(choices), metavar="NAME",
                        help=f"one of {', '.join(choices)}")
    parser.add_argument("--csv", required=True, type=Path, metavar="IN", help="input CSV, one case per row")
    parser.add_argument("--out", type=Path, metavar="OUT", help="output CSV (default: stdout)")
    return parser


def serving_model(registry: Any, name: str) -> tuple[Any, bool]:
    """(LoadedModel, is_fallback) of what serves `name` now; ModelUnavailable if nothing."""
    from core.errors import ArtifactsMissing, ModelUnavailable
    from core.service import BAYES, STUB

    candidates = [(BAYES, False), (STUB, True)] if name == "breast_cancer" else [(name, False)]
    reasons = []
    for candidate, fallback in candidates:
        try:
            return registry.load_champion(candidate), fallback
        except (ModelUnavailable, ArtifactsMissing) as error:
            reasons.append(str(error))
    raise ModelUnavailable(f"No model can score {name}: " + " ".join(reasons))


def _cell(value: Any) -> object:
    """CSV text -> float where it parses; otherwise the raw text, so validation names it."""
    if value is None:
        return None
    text = str(value).strip()
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def score_frame(loaded: Any, is_fallback: bool, frame: Any) -> Any:
    """One output row per input row, via the predictor's batch path (predict_frame, the
    same frame the pyfunc returns); rows failing validation carry their message in `error`."""
    import pandas as pd

    predictor = loaded.predictor
    used = [c for c in predictor.input_features if c in frame.columns]
    # object columns keep None (an empty cell: "has no value") and text as they are
    inputs = pd.DataFrame(
        {c: pd.Series([_cell(v) for v in frame[c]], dtype=object) for c in used}, index=range(len(frame))
    )
    scored = predictor.predict_frame(inputs).reset_index(drop=True)
    result = pd.DataFrame({"row": range(len(frame))})
    for column in scored.columns:
        if column != "error":
            result[column] = scored[column].to_numpy()
    if "is_fallback" in result.columns or is_fallback:
        valid = scored["error"].fillna("").astype(str) == ""
        flag = result["is_fallback"].fillna(0).astype(bool) if "is_fallback" in result.columns else False
        result["is_fallback"] = (flag | is_fallback) & valid
    result["model"] = loaded.name
    result["model_version"] = loaded.version
    result["error"] = scored["error"].fillna("").astype(str).to_numpy()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import core  # noqa: F401  - host device count before JAX is imported
    from core.config import load_settings
    from core.errors import StudioError
    from core.models import MODEL_NAMES

    args = _parser(["breast_cancer", *MODEL_NAMES]).parse_args(argv)
    started = time.perf_counter()
    summary_stream = sys.stdout if args.out else sys.stderr

    def finish(code: int, **fields: Any) -> int:
        fields.setdefault("seconds", round(time.perf_counter() - started, 3))
        print(json.dumps({"ok": code == EXIT_OK, **fields}, default=str), file=summary_stream, flush=True)
        return code

    try:
        settings = load_settings()
    except StudioError as error:
        return finish(EXIT_USAGE, error=str(error))
    import pandas as pd

    try:
        frame = pd.read_csv(args.csv, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        return finish(EXIT_FAILED, error=f"cannot read {args.csv}: {error}")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            from core.registry import Registry

            registry = Registry(settings)
            registry.ensure_store()
            loaded, is_fallback = serving_model(registry, args.model)
            result = score_frame(loaded, is_fallback, frame)
    except StudioError as error:
        return finish(EXIT_FAILED, error=str(error), model=args.model)
    errors = int((result["error"] != "").sum()) if len(result) else 0
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result.to_csv(args.out, index=False)
    else:
        result.to_csv(sys.stdout, index=False)
    return finish(
        EXIT_ROW_ERRORS if errors else EXIT_OK,
        model=loaded.name, version=loaded.version, is_fallback=is_fallback,
        rows=len(result), scored=len(result) - errors, errors=errors,
        out=str(args.out) if args.out else None,
    )


if __name__ == "__main__":
    sys.exit(main())
