"""Which exam next? Per patient and missing modality, the expected value of acquiring it (``fusemed advise``).

``advise_cohort(run, cohort)`` completes each missing modality with the real values of matched training
subjects (:mod:`~fusemed.advise.donors`), pushes each completion through the run's folds and post-hoc steps
(:mod:`~fusemed.advise.scorer`) and reports the expected entropy reduction, the probability that the
conformal set becomes a single label and the probability that the decision flips, with intervals
(:mod:`~fusemed.advise.value`). Design and its limits: docs/advise.md.
"""

from fusemed.advise.api import COLUMNS, advise_cohort
from fusemed.advise.scorer import Scorer, load_posthoc
from fusemed.advise.value import Substitution, answers_after, value_of

__all__ = ["COLUMNS", "Scorer", "Substitution", "advise_cohort", "answers_after", "load_posthoc", "value_of"]
