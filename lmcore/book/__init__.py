"""The book's layer: what the chapters read and show, never what a run executes.

``chapter`` (a chapter's set-up and its runs in any profile), ``references`` (the ``reference``
profile, built from the committed records), ``reporting`` (tables with provenance),
``leaderboard`` (every method's headline runs on one protocol), ``papers`` (numbers quoted from
the papers) and ``viz`` (figures and widgets).

No module outside this folder that trains or evaluates a run imports it (a test walks every
method's import closure), so a run's code fingerprint never covers it: editing a table, a figure
or a quoted number retrains nothing.
"""
