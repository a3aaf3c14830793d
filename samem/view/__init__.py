"""The operator's view: a live browser page for ``samem serve --view`` (:mod:`samem.view.server`)
and annotated movies of results files (:mod:`samem.view.movie`, ``samem movie``).

The page's HTML, JavaScript and CSS ship in ``samem/view/static`` (no CDN: lab networks are
often offline).
"""
