"""A stand-in for Flask: just enough of its API to run the partner guide's
endpoint in webhookd's tests, where Flask is not installed. The endpoint's own
code runs as printed; only the framework is replaced."""

routes = {}


class _Headers(dict):
    """Case-insensitive, like werkzeug's Headers."""

    def get(self, name, default=None):
        for k, v in self.items():
            if k.lower() == name.lower():
                return v
        return default


class _Request:
    def __init__(self):
        self.headers = _Headers()
        self.data = b''

    def get_data(self):
        return self.data


request = _Request()


def jsonify(value):
    return value


class Flask:
    def __init__(self, name):
        self.name = name

    def route(self, path, methods=None):
        def register(handler):
            routes[path] = handler
            return handler
        return register

    def run(self, **kwargs):
        raise RuntimeError('the stand-in Flask does not serve')
