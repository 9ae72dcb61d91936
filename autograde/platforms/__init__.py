"""Where instructors already grade: a Gradescope autograder (:mod:`.gradescope`), a code-similarity
report (:mod:`.similarity`) and PDFs of the hand-graded answers (:mod:`.pdf`).

These modules reach the grader only through its command line (``python -m autograde grade`` and
``validate``) and its documented outputs (``results/<student>/<assignment>.json``), so a score,
a flag or a diagnosis on Gradescope is by construction the one ``grade`` gives.
"""
