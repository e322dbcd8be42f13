"""Event, timer and command handlers of the casereview service, one module per concern:

- ``intake``: a closed case file is stored and pre-checked (自动预检); the officer registry;
- ``self_review``: the unit's 自查 and 书面自评报告 before the review;
- ``campaigns``: 双随机 draws that open the reviews;
- ``scoring``: 评查打分 by the rubric;
- ``rectification``: 整改 orders, answers, verdicts and overdue 通报;
- ``case_log``: what they share: load and save a case, emit its change.

Every change runs inside one unit of work (transaction), and every timer, lead and notice id
is derived from a business key, so a retry never doubles anything.
"""
