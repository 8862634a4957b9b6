"""The course's shared experiments: the models several lessons train once and load from the zoo.

=============  =====================================================================
``base``       ``Experiment``: the one zoo path (key, seeded weights, meter, record) of them all
``fashion``    the Fashion-MNIST teacher (lesson 1), lesson 3's T and α, the students of lessons 5–6
``language``   the Shakespeare teacher, its transfer set and the students of lessons 8–10
``adaptation`` lesson 10's models adapted to the Bible: fine-tuned, distilled again, or fresh
``results``    ``record``: a lesson's headline numbers for ``make course``'s summary
=============  =====================================================================

Each experiment is a frozen dataclass (``FashionTeacher``, ``KDSweep``, ``LMStudent``...) whose
cache key is its whole config plus the identity of what it learns from; lessons reach them as
``kd.experiments.teacher(data)`` and so on, thin wrappers over those objects.  They build on the
library (``kdlib.*``) and never on the course tooling (``kdlib.tooling``).
"""
from __future__ import annotations

from .adaptation import ADAPT_LRS, ADAPT_ROUTES, Adapted, adapt_passes, adapted
from .base import Experiment
from .fashion import (FASHION_STUDENTS, FEW_LABEL_FRACTION, FashionStudent, FashionTeacher, KDSetting, KDSweep,
                      SweepStudent, build_teacher, fashion_fit, fashion_student, few_labels, kd_choice, small_cnn,
                      teacher, teacher_config)
from .language import (LM_CACHE_KS, LM_KD_GRID, LM_SIZES, LMStudent, LMTeacher, LMTransfer, build_lm, cache_epochs,
                       fair_scores, lm_cache_choice, lm_kd_choice, lm_scores, lm_student, lm_teacher,
                       teacher_bits_on_samples)
from .results import record

__all__ = [
    "ADAPT_LRS", "ADAPT_ROUTES", "Adapted", "adapt_passes", "adapted", "Experiment", "FASHION_STUDENTS", "FEW_LABEL_FRACTION", "FashionStudent", "FashionTeacher", "KDSetting", "KDSweep",
    "LMStudent", "LMTeacher", "LMTransfer", "LM_CACHE_KS", "LM_KD_GRID", "LM_SIZES", "SweepStudent", "build_lm",
    "build_teacher", "cache_epochs", "fair_scores", "fashion_fit", "fashion_student", "few_labels", "kd_choice",
    "lm_cache_choice", "lm_kd_choice", "lm_scores", "lm_student", "lm_teacher", "record", "small_cnn", "teacher",
    "teacher_bits_on_samples", "teacher_config",
]
