"""Each model round-trips through MLflow (models-from-code pyfunc) with equal predictions."""
from __future__ import annotations

import pandas as pd
import pytest

from core.data import load_dataset
from core.models import get_spec
from tests.conftest import make_settings
from tests.core.models._helpers import log_and_load


@pytest.mark.parametrize("name,with_config", [
    ("iris_random_forest", True),
    ("iris_logistic_regression", False),
    ("breast_cancer_stub", True),
])
def test_round_trip_through_mlflow(name, with_config, tmp_path):
    trained = get_spec(name).train(make_settings(tmp_path))
    loaded = log_and_load(trained.predictor, name, tmp_path, with_config)
    X = load_dataset(get_spec(name).dataset).X_test
    out = loaded.predict(X)
    pd.testing.assert_frame_equal(out.reset_index(drop=True), trained.predictor.predict_frame(X).reset_index(drop=True))
    rich = loaded.unwrap_python_model().predictor
    assert rich.model_name == name
    row = X.iloc[0].to_dict()
    assert rich.predict(row) == trained.predictor.predict(row)


def test_missing_model_name_is_a_clear_error(tmp_path):
    from core.errors import ArtifactsMissing
    from core.models.pyfunc_entry import StudioModel

    class Context:
        model_config = None
        artifacts = {}

    with pytest.raises(ArtifactsMissing, match="names no model"):
        StudioModel().load_context(Context())
