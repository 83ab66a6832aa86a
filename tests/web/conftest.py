import pytest

from unsup3d.testing import running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One ``unsup3d serve`` for the web tests: (url, log file, process); stopping it checks that its temporary
    folder is gone."""
    pytest.importorskip("gradio")
    with running_server(tmp_path_factory.mktemp("server")) as found:
        yield found
