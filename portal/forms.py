"""Forms of the portal package."""

from django import forms

from .choices import Scope


class TokenCreateForm(forms.Form):
    """Create a scoped API token for one of the user's teams."""

    team = forms.ModelChoiceField(queryset=None, empty_label=None)
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(choices=Scope.choices, widget=forms.CheckboxSelectMultiple)
    expires_days = forms.IntegerField(min_value=1, max_value=3650, required=False, initial=90)

    def __init__(self, *args: object, teams: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams
