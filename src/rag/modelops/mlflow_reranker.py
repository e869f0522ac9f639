"""MLflow models-from-code entry of the reranker (``rag.modelops.pyfunc.RerankerPyfunc``).

``mlflow.pyfunc.save_model(python_model=<this file>)`` stores this file with the model, and
MLflow runs it to build the model when loading: no pickled Python object in the artifact.
"""

from mlflow.models import set_model

from rag.modelops.pyfunc import RerankerPyfunc

set_model(RerankerPyfunc())
