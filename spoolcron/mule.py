"""The spoolcron mule as a script: ``mule = /path/to/spoolcron/mule.py`` in the uWSGI config.

uWSGI 2.0 sets up its ``module:function`` mule loader only where apps are loaded; under
``lazy-apps`` that is the workers alone, and ``mule = spoolcron.uwsgi:mule`` crashes the mule.
A ``.py`` mule runs as ``__main__`` without that loader, with or without ``lazy-apps``.
``manage.py spoolcron uwsgi-config`` prints this file's path.
"""

if __name__ == "__main__":
    from spoolcron.uwsgi import mule

    mule()
