"""nbgrader configuration: maps nbgrader's folders onto the course layout (see README, Grading).

Formgrader and every nbgrader command read the grader's output folder, ``graded/`` (git-ignored,
as ``python -m autograde grade --out graded`` writes it; another one: ``AUTOGRADE_OUT=DIR``):
its gradebook and its ``autograded/`` notebooks. Command-line flags such as
``--CourseDirectory.db_url`` do not reach Formgrader inside ``jupyter lab``: this file does.
"""
import os

c = get_config()  # noqa: F821 - provided by nbgrader/traitlets when this file is loaded

OUT = os.environ.get("AUTOGRADE_OUT", "graded")

c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = os.path.join(OUT, "autograded")
c.CourseDirectory.feedback_directory = os.path.join(OUT, "nbgrader-feedback")  # not for students: OUT/feedback is
c.CourseDirectory.db_url = f"sqlite:///{os.path.abspath(os.path.join(OUT, 'gradebook.db'))}"
# Release writes exercises/<assignment>/ (no per-student folder level for the release step).
c.CourseDirectory.directory_structure = "{nbgrader_step}/{student_id}/{assignment_id}"
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# `nbgrader zip_collect ASSIGNMENT` on the archives an LMS gives (book/instructors.md): Canvas's or
# Moodle's file names (AUTOGRADE_LMS=moodle), read by autograde's collector, which names each
# student folder after the student and keeps the LMS's id for the grade export.
c.ZipCollectApp.collector_plugin = "autograde.grading.collect.LmsCollector"
c.LmsCollector.lms = os.environ.get("AUTOGRADE_LMS", "canvas")
c.ZipCollectApp.archive_directory = "archive"
