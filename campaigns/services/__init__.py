"""Every write of the campaigns app: ``campaigns`` (create, schedule, run, results),
``actions`` (what a campaign or automation does to members), ``channels`` (message channels
higher apps provide), ``automation`` (rules and their firings), ``policy`` (contact policy)."""
