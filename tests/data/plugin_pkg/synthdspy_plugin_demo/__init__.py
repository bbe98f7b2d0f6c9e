"""A tiny third-party synthdspy plugin: the ``headline`` task and the ``max_words`` gate."""
