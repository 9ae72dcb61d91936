"""The instructor grader: isolated, tamper-evident, parallel (``python -m autograde grade``),
and the students' ``python -m autograde validate``. See autograde/README.md for the data flow."""
