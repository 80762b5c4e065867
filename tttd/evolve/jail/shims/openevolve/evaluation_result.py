"""tttd stand-in for ``openevolve.evaluation_result.EvaluationResult``: metrics + artifacts."""


class EvaluationResult:
    def __init__(self, metrics=None, artifacts=None):
        self.metrics = dict(metrics or {})
        self.artifacts = dict(artifacts or {})

    @classmethod
    def from_dict(cls, metrics):
        return cls(metrics=metrics)

    def to_dict(self):
        return dict(self.metrics)

    def has_artifacts(self):
        return bool(self.artifacts)
