"""What every page of ganfactory shares: the app factory (no docs routes, Host and Origin checks, the page's own
files, the favicon), loopback binding and serving, and the lock that keeps one server per project.

The annotator (``ganfactory.annotate.server``) is built on it, and so are the coming 3-D pages (``multiview
annotate``, ``view``, ``neural-render serve``): a page module adds only its own API routes. JavaScript packages from npm
(three.js) are served from the checkout's ``js/node_modules`` by ``ganfactory.web.vendor``.
"""

from ganfactory.web.app import LOOPBACK_HOSTS, PageFiles, create_web_app, error_response
from ganfactory.web.lock import project_lock
from ganfactory.web.serve import bind, serve, serving

__all__ = ["LOOPBACK_HOSTS", "PageFiles", "bind", "create_web_app", "error_response", "project_lock", "serve",
           "serving"]
