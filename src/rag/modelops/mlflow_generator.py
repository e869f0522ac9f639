"""MLflow models-from-code entry of the generator (``rag.modelops.pyfunc.GeneratorPyfunc``).

``mlflow.pyfunc.save_model(python_model=<this file>)`` stores this file with the model, and
MLflow runs it to build the model when loading: no pickled Python object in the artifact.
"""

from mlflow.models import set_model

from rag.modelops.pyfunc import GeneratorPyfunc

set_model(GeneratorPyfunc())
