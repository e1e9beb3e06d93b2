"""Every write of the integrations app.  ``connections`` (OA apps and WeCom corps, their
checks and API clients), ``followers`` (OA follower sync), ``wecom`` (guides, customers,
relations, groups), ``callbacks`` (received events), ``channels`` (channel codes),
``tagsync`` (OA and WeCom tags), ``messages`` (template and mass messages)."""
