import twin


def test_public_surface_is_pinned() -> None:
    assert sorted(twin.__all__) == sorted(
        [
            "ConfigError",
            "LineFileError",
            "MesError",
            "MesRefused",
            "MesTimeout",
            "MesUnavailable",
            "Operation",
            "PayloadInvalid",
            "Profile",
            "ProfileError",
            "TwinError",
            "UnknownOperation",
            "__version__",
            "load_profile",
        ]
    )


def test_errors_inherit_the_builtins_callers_expect() -> None:
    assert issubclass(twin.MesTimeout, TimeoutError)
    assert issubclass(twin.MesUnavailable, ConnectionError)
    assert issubclass(twin.UnknownOperation, KeyError)
    assert twin.ConfigError.exit_code == 2 and twin.PayloadInvalid.exit_code == 1
