"""Feedback a person can look at: `ltr explain` as self-contained HTML pages.

- `numbers`: the one rounding rule every page uses (tests compare pages with the JSON by it);
- `html`: escaping, the shared stylesheet and page shell (also used by the study report);
- `profile`: one profile's page; `index`: the split's index page;
- `pages`: writing them (one user, or a whole split with batched what-if scoring).
"""
