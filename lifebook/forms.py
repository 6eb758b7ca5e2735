from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import audit
from .models import Chapter, Memory, Patient, Subject
from .services import save_patient


class PatientForm(forms.ModelForm):
    photo_consent = forms.BooleanField(
        required=False,
        label="We have consent to use photos of this person to make their book",
        help_text="Photos of a patient are health data. Record consent before uploading any.",
    )

    class Meta:
        model = Patient
        fields = ["name", "preferred_name", "birth_year", "photo_consent", "photo_consent_note", "notes"]
        labels = {"photo_consent_note": "Who gave consent"}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["photo_consent"].initial = self.instance.has_photo_consent

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("photo_consent") and not cleaned.get("photo_consent_note", "").strip():
            self.add_error("photo_consent_note", "Say who gave consent, for example “Juan himself”.")
        return cleaned

    def save(self, commit=True):
        """Saves with the consent record (and, for a new book, this user as its owner): `save_patient`.
        With commit=False nothing is recorded, so callers must not save the patient themselves."""
        patient = super().save(commit=False)
        if commit:
            save_patient(patient, consent=self.cleaned_data["photo_consent"], user=self.user,
                         where=audit.DETAILS_PAGE)
        return patient


class EraseForm(forms.Form):
    """Erasing a book is for good: its owner types the patient's name to say they mean it."""

    confirm_name = forms.CharField(
        max_length=200, label=gettext_lazy("Type their full name to confirm"),
        error_messages={"required": gettext_lazy("Type the name shown above to erase the book.")})

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        self.patient = patient

    def clean_confirm_name(self):
        typed = " ".join(self.cleaned_data["confirm_name"].split())
        if typed.casefold() != " ".join(self.patient.name.split()).casefold():
            raise forms.ValidationError(
                _("That is not the name. Type %(name)s exactly as shown to erase the book, or go back.")
                % {"name": self.patient.name})
        return typed


class SubjectForm(forms.ModelForm):
    class Meta:
        model = Subject
        fields = ["kind", "name", "relationship", "life_stage", "class_word"]
        labels = {
            "kind": "Who or what is it?",
            "relationship": "Relationship to the patient",
            "life_stage": "Life stage (for the patient at one age)",
            "class_word": "In one or two plain words, what is it?",
        }
        help_texts = {
            "class_word": "For example: man, woman, boy, dog, church, house. Left empty, Lifebook picks one.",
            "life_stage": "Only for the patient: add one for each age with photos from that time.",
        }


class ChapterForm(forms.ModelForm):
    class Meta:
        model = Chapter
        fields = ["title", "life_stage"]
        help_texts = {"title": "Chapters usually follow life stages: childhood, youth, adulthood, old age."}


class MemoryForm(forms.ModelForm):
    """Title, caption, who and where, and what happens: the words the pictures are made from."""

    class Meta:
        model = Memory
        fields = ["chapter", "title", "description", "subjects", "scene"]
        labels = {"description": "Caption", "subjects": "Who and where is in this memory",
                  "scene": "What happens in the picture"}
        help_texts = {"scene": "In your own words, e.g. “Juan walking in the mountains with his dog”.",
                      "chapter": "Choosing another chapter moves the memory to the end of that chapter.",
                      "subjects": "Lifebook draws the people, places and pets it has learned."}
        widgets = {"subjects": forms.CheckboxSelectMultiple}

    def __init__(self, *args, patient, **kwargs):
        super().__init__(*args, **kwargs)
        from generation.planning import trained_annotation

        chapters = patient.chapters.all()
        self.fields["chapter"].queryset = chapters
        self.fields["chapter"].empty_label = "Choose a chapter"
        if not self.instance.pk and not self.initial.get("chapter") and len(chapters) == 1:
            self.initial["chapter"] = chapters[0].pk  # the only one: nothing to choose
        # Chips name who or what each one is, and say which Lifebook has not learned yet.
        self.fields["subjects"].queryset = patient.subjects.annotate(trained=trained_annotation())
        self.fields["subjects"].label_from_instance = subject_chip_label
        self.fields["subjects"].required = False


def subject_chip_label(subject) -> str:
    words = [subject.name]
    if subject.relationship:
        words.append(f"({subject.relationship})")
    if not getattr(subject, "trained", True):
        words.append("· not learned yet")
    return " ".join(words)
