"""The instructor grader: isolated, tamper-evident, parallel (``python -m autograde grade``),
and the students' ``python -m autograde validate``. See README.md in this folder."""
