from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import User


class CaregiverSignUpForm(UserCreationForm):
    first_name = forms.CharField(max_length=150, label="Your first name")
    email = forms.EmailField(
        label="Email", help_text="Used to reset your password and to be invited to a care team."
    )

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "first_name", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].strip()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists. Try logging in instead.")
        return email
