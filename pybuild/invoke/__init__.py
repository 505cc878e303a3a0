"""`pybuild invoke`: a Lambda invocation without Docker.

A local Runtime API server (`api`), the execution environment around a Node.js runtime client
(`environment`: aws-lambda-ric or pybuild's own loop, see `clients`) with the layer at /opt and
its Python under qemu where needed (`run`), Lambda's lifecycle and REPORT lines (`lifecycle`),
and the original design's testing checklist against a local fake provider (`checklist`).
"""

from pybuild.invoke.environment import FunctionConfig
from pybuild.invoke.lifecycle import InvocationResult, LambdaFunction
from pybuild.invoke.run import function_session

__all__ = ["FunctionConfig", "InvocationResult", "LambdaFunction", "function_session"]
