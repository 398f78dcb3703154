"""One training loop for every method, run records, and the run API chapters call."""
from ..config import TrainConfig
from .loop import TrainResult, distributed_context, prepare_images, train
from .records import config_hash, describe_device, git_commit, read_record, write_json_atomic
from .run_record import RunRecord
from .runs import (
    PublishRefused,
    RunBusyError,
    find_run,
    load_references,
    load_trained,
    publish_reference,
    resolve_config,
    run_detections,
    run_method,
    run_variants,
    variant_run_name,
)

__all__ = [
    "PublishRefused", "RunBusyError", "RunRecord", "TrainConfig", "TrainResult", "config_hash", "describe_device",
    "distributed_context", "find_run", "git_commit", "load_references", "load_trained", "prepare_images", "publish_reference",
    "read_record", "resolve_config", "run_detections", "run_method", "run_variants", "train", "variant_run_name",
    "write_json_atomic",
]
