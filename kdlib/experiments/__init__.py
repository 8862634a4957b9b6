"""The course's shared experiments: the models several lessons train once and load from the zoo.

=============  =====================================================================
``fashion``    the Fashion-MNIST teacher (lesson 1), lesson 3's T and α, the students of lessons 5–6
``language``   the Shakespeare teacher, its transfer set and the students of lessons 8–9
``results``    ``record``: a lesson's headline numbers for ``make course``'s summary
=============  =====================================================================

Lessons reach them as ``kd.experiments.teacher(data)`` and so on.  They build on the library
(``kdlib.*``) and never on the course tooling (``kdlib.tooling``).
"""
from __future__ import annotations

from .fashion import (FASHION_STUDENTS, FEW_LABEL_FRACTION, build_teacher, fashion_fit, fashion_student, few_labels,
                      kd_choice, kd_sweep_plan, small_cnn, teacher, teacher_config)
from .language import (LM_KD_GRID, LM_SIZES, LMTransfer, build_lm, lm_kd_choice, lm_scores, lm_student,
                       lm_student_plan, lm_teacher, lm_teacher_config)
from .results import record

__all__ = [
    "FASHION_STUDENTS", "FEW_LABEL_FRACTION", "LMTransfer", "LM_KD_GRID", "LM_SIZES", "build_lm", "build_teacher",
    "fashion_fit", "fashion_student", "few_labels", "kd_choice", "kd_sweep_plan", "lm_kd_choice", "lm_scores",
    "lm_student", "lm_student_plan", "lm_teacher", "lm_teacher_config", "record", "small_cnn", "teacher",
    "teacher_config",
]
