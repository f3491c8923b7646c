"""Settings from the environment and `.env`. The variable names are a stable interface."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot import PROJECT_ROOT
from bot.shifts import Shift, ShiftSpecError, parse_shifts
from bot.thresholds import ShopOverrideError, Thresholds, parse_shop_overrides

DEFAULT_BASE_URL = "https://api.telegram.org/bot"
DEFAULT_BASE_FILE_URL = "https://api.telegram.org/file/bot"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: str = Field("", repr=False)
    telegram_base_url: str = DEFAULT_BASE_URL
    telegram_base_file_url: str = DEFAULT_BASE_FILE_URL
    kefu_db_path: Path = Path("data/kefu.db")
    kefu_admin_ids: Annotated[tuple[int, ...], NoDecode] = ()
    kefu_timezone: str = "Asia/Shanghai"
    kefu_shifts: str = "day=08:30-17:30;night=17:30-01:00"
    kefu_team_chat_id: int | None = None
    kefu_kb_dir: Path = PROJECT_ROOT / "scripts_kb"
    kefu_log_level: str = "INFO"

    # Orders intake (issue 4)
    kefu_api_token: str = Field("", repr=False)
    kefu_api_port: int | None = None
    kefu_api_host: str = "127.0.0.1"
    #: Files sent in the chat (Telegram lets bots download at most 20 MB) and API push bodies.
    kefu_import_max_mb: int = Field(20, ge=1, le=2000)
    #: `kefu import` on the server: streams the file, so only this guard applies (issue 11).
    kefu_cli_import_max_mb: int = Field(2048, ge=1)

    # Reminders (issue 5)
    kefu_unpaid_remind_hours: float = Field(12, gt=0)
    kefu_unshipped_warn_hours: float = Field(36, gt=0)
    kefu_unshipped_remind_hours: float = Field(48, gt=0, validate_default=True)
    kefu_shop_overrides: str = ""
    kefu_scan_interval_seconds: int = Field(60, ge=1)
    kefu_escalate_minutes: int = Field(30, ge=1)
    #: A shipping breach closed while the order is still unshipped fires again this much later.
    kefu_breach_repeat_hours: float = Field(4, gt=0, le=720)

    # Handover (issue 6) and broadcasts (issue 7)
    kefu_handover_prompt_minutes: int = Field(15, ge=1)
    kefu_handover_ack_minutes: int = Field(30, ge=1)
    kefu_urgent_renotify_minutes: int = Field(10, ge=1)
    kefu_standards_file: Path | None = None  # service standards (issue 17); empty: bot/kpi/standards.yaml
    #: The Monday meeting pack: sent every Monday this many minutes before the day's first shift;
    #: KEFU_MONDAY_PACK=false turns it off.
    kefu_monday_pack: bool = True
    kefu_monday_pack_lead_minutes: int = Field(30, ge=0, le=720)

    @field_validator("kefu_admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace("，", ",").split(",") if p.strip()]
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError("must be comma-separated numeric Telegram user ids") from None
        return value

    @field_validator("kefu_team_chat_id", "kefu_api_port", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kefu_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("kefu_shifts")
    @classmethod
    def _valid_shifts(cls, value: str) -> str:
        try:
            parse_shifts(value)
        except ShiftSpecError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("kefu_unshipped_remind_hours")
    @classmethod
    def _warn_before_breach(cls, value: float, info: ValidationInfo) -> float:
        warn = info.data.get("kefu_unshipped_warn_hours")
        if warn is not None and warn >= value:
            raise ValueError(ShopOverrideError("default_warn_not_before_breach", warn=warn, unshipped=value).message())
        return value

    @field_validator("kefu_shop_overrides")
    @classmethod
    def _valid_shop_overrides(cls, value: str, info: ValidationInfo) -> str:
        defaults = Thresholds(
            unpaid=info.data.get("kefu_unpaid_remind_hours", 12),
            warn=info.data.get("kefu_unshipped_warn_hours", 36),
            unshipped=info.data.get("kefu_unshipped_remind_hours", 48),
        )
        try:
            parse_shop_overrides(value, defaults)
        except ShopOverrideError as exc:
            raise ValueError(exc.message()) from None
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.kefu_timezone)

    @cached_property
    def shifts(self) -> tuple[Shift, ...]:
        return parse_shifts(self.kefu_shifts)

    def shift(self, name: str) -> Shift | None:
        return next((s for s in self.shifts if s.name == name), None)


class SettingsError(Exception):
    """A bad setting: `setting` is the environment variable's name, `message` says what is wrong.
    Raised by `load_settings`; the CLI prints it (bot/cli.py) and exits with code 2."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


def load_settings(**overrides: object) -> Settings:
    """Read settings; a bad value raises SettingsError naming the setting."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error.get("loc") else "SETTINGS"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        raise SettingsError(name, message) from None
