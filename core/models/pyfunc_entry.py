"""MLflow models-from-code entry: one pyfunc class for all four models.

Log with:
    mlflow.pyfunc.log_model(name=..., python_model="core/models/pyfunc_entry.py",
                            artifacts=predictor.save(tmpdir), model_config={"model_name": name},
                            pip_requirements=[...])
load_context finds the model name in model_config, else in the 'meta' json artifact that
every Predictor.save writes, and rebuilds the rich predictor with load_predictor.
`mlflow.pyfunc.load_model(uri).unwrap_python_model().predictor` is that predictor.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class StudioModel(PythonModel):
    """Thin MLflow wrapper: predict(df) == predictor.predict_frame(df)."""

    predictor: Any = None

    def load_context(self, context: Any) -> None:
        from core.models import load_predictor

        config = dict(context.model_config or {})
        name = config.get("model_name")
        if not name and "meta" in context.artifacts:
            name = json.loads(Path(context.artifacts["meta"]).read_text()).get("model_name")
        if not name:
            from core.errors import ArtifactsMissing

            raise ArtifactsMissing("The logged model names no model: no model_config['model_name'] and no meta artifact.")
        self.predictor = load_predictor(str(name), context.artifacts)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        if not isinstance(model_input, pd.DataFrame):
            model_input = pd.DataFrame(model_input)
        return self.predictor.predict_frame(model_input)


mlflow.models.set_model(StudioModel())
