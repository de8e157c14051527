"""Names of the recorded prompts the call applications play.

Applications name prompts by what they say; the prompt catalogue
(``appliance.media.prompts``) maps each name to a file of the installed sound set
per language, so the wording can change, or an installer's own recording replace
one, without touching an application. Number, date and time announcements
(``announce.py``) use a second family of names, ``digits/<word>`` (``digits/3``,
``digits/hundred``, ``digits/day-2``), which map to the sound set's ``digits/`` folder
of the language.
"""

from __future__ import annotations

from enum import StrEnum


class Prompt(StrEnum):
    BEEP = "beep"
    # deposit
    LEAVE_MESSAGE = "leave-message"  # "please leave your message after the tone..."
    THE_PERSON_AT = "the-person-at"  # "the person at extension"
    IS_UNAVAILABLE = "is-unavailable"
    IS_ON_THE_PHONE = "is-on-the-phone"
    NOBODY_AVAILABLE = "nobody-available"
    MAILBOX_FULL = "mailbox-full"
    MESSAGE_SAVED = "message-saved"  # after a deposit
    TOO_SHORT = "too-short"
    # access: login
    MAILBOX_NUMBER = "mailbox-number"  # "mailbox?"
    ENTER_PIN = "enter-pin"  # "password"
    LOGIN_INCORRECT = "login-incorrect"
    NO_SUCH_MAILBOX = "no-such-mailbox"
    GOODBYE = "goodbye"
    # access: counts
    YOU_HAVE = "you-have"
    NEW = "new"
    OLD = "old"  # read or saved
    AND = "and"
    MESSAGE = "message"
    MESSAGES = "messages"
    NO = "no"
    NO_MORE_MESSAGES = "no-more-messages"
    # access: message menu
    FIRST = "first"
    NEXT = "next"
    LAST = "last"
    RECEIVED = "received"
    FROM_PHONE_NUMBER = "from-phone-number"
    UNKNOWN_CALLER = "unknown-caller"
    MAIN_MENU = "main-menu"  # "press 1 for new messages, 2 to change folders..."
    MESSAGE_MENU = "message-menu"  # "to repeat press 5, ... delete 7, save 9"
    OPTIONS_MENU = "options-menu"  # greetings and password
    DELETED = "deleted"
    SAVED = "saved"
    UNDELETED = "undeleted"
    URGENT = "urgent"
    # access: greetings and PIN
    RECORD_UNAVAILABLE = "record-unavailable"
    RECORD_BUSY = "record-busy"
    RECORD_NAME = "record-name"
    NEW_PIN = "new-pin"
    REENTER_PIN = "reenter-pin"
    PIN_CHANGED = "pin-changed"
    PIN_MISMATCH = "pin-mismatch"
    # menus and general
    INVALID = "invalid"  # "that is not a valid option"
    PLEASE_TRY_AGAIN = "please-try-again"
    PLEASE_HOLD = "please-hold"  # "please hold while I try that extension"
    NOT_ANSWERING = "not-answering"
    IS_IN_USE = "is-in-use"
    EXTENSION = "extension"
    ENTER_EXTENSION = "enter-extension"
    WELCOME = "welcome"  # the demo auto-attendant greeting
    THANK_YOU = "thank-you"
    SORRY = "sorry"
