from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm, UserCreationForm
from django.utils.translation import gettext_lazy as _

from .models import User

EMAIL_ERRORS = {"required": _("Type an email address."),
                "invalid": _("That email address does not look right. Check it for typos.")}


class SignUpForm(UserCreationForm):
    """A new account. Its email is not stored from what was typed: either a link to it confirms it
    (accounts.addresses), or, when the person signs up through an invitation link, it is the invitation's
    address (reading that email is the proof), and the form has no email field at all."""

    first_name = forms.CharField(max_length=150, label=_("Your first name"),
                                 error_messages={"required": _("Type your first name.")})
    email = forms.EmailField(
        label=_("Email"), max_length=254, error_messages=EMAIL_ERRORS,
        help_text=_("We send it a link to confirm it. It is used to reset your password and to invite you to "
                    "care teams."))

    error_messages = {"password_mismatch": _("The two passwords are not the same. Type the same password twice.")}

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name")

    def __init__(self, *args, invitation=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.invitation = invitation
        if invitation is not None:
            del self.fields["email"]
        self.fields["username"].error_messages["required"] = _("Choose a username.")
        self.fields["username"].help_text = _("You log in with it. Letters, digits and @ . + - _ only.")
        self.fields["password2"].help_text = _("Type the same password again, to be sure of it.")

    def clean_username(self):
        # Saying that a username is taken cannot be avoided (it must be unique), but it is all this form says
        # about other accounts: an email address in use gets the same answer as a new one.
        username = self.cleaned_data.get("username")
        if username and User.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("That username is taken. Choose another one."), code="unique")
        return username

    def clean(self):
        cleaned = super().clean()
        # Only reachable through the link, which was sent to that address: its reader learns nothing new.
        if self.invitation is not None and User.objects.filter(email__iexact=self.invitation.email).exists():
            raise forms.ValidationError(
                _("The address this invitation was sent to already belongs to a Lifebook account. Log in with "
                  "that account to join (if you have forgotten its password, you can reset it)."),
                code="address_in_use")
        return cleaned

    def save(self, commit=True):
        user = super().save(commit=False)
        user.email = self.invitation.email if self.invitation is not None else ""
        if commit:
            user.save()
        return user


class LoginForm(AuthenticationForm):
    """Django's login form in plain words. One message for every failure, so it never tells whether a
    username exists (django-axes locks a username after repeated failures whether or not it exists)."""

    error_messages = {
        "invalid_login": _("That username and password do not match an account. Check them and try again "
                           "(the password is case-sensitive)."),
        "inactive": _("That username and password do not match an account. Check them and try again "
                      "(the password is case-sensitive)."),
    }


class ResetForm(PasswordResetForm):
    """The reset page answers the same whether or not an account uses the address (see its "done" page)."""

    email = forms.EmailField(label=_("Your email address"), max_length=254, error_messages=EMAIL_ERRORS,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class AddressForm(forms.Form):
    email = forms.EmailField(label=_("Email address"), max_length=254, error_messages=EMAIL_ERRORS,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}),
                             help_text=_("We send it a link: it becomes your account's address when you open "
                                         "the link and confirm."))


class PasswordCheckForm(forms.Form):
    """Asks for the account's password before something that cannot be undone. It goes through
    `authenticate`, so django-axes counts wrong guesses here as it does at login."""

    password = forms.CharField(label=_("Your password"), strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
                               error_messages={"required": _("Type your password.")})

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_password(self):
        password = self.cleaned_data["password"]
        user = self.request.user
        if authenticate(self.request, username=user.get_username(), password=password) != user:
            raise forms.ValidationError(_("That is not your password. Try again."), code="wrong_password")
        return password


class EmailSettingsForm(forms.ModelForm):
    """Whether Lifebook emails when a job this person started ends (the dashboard notice stays either way)."""

    class Meta:
        model = User
        fields = ["email_when_jobs_end"]
        labels = {"email_when_jobs_end": _("Email me when pictures or learning I started are done, fail or are stopped")}
        help_texts = {"email_when_jobs_end": _("The dashboard shows it either way.")}
