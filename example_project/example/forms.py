from django import forms


class EnqueueForm(forms.Form):
    """A one-off job for the ``say`` task, due some seconds from now."""

    seconds = forms.IntegerField(min_value=0, max_value=86400, initial=10, label="Run in (seconds)")
    text = forms.CharField(max_length=200, initial="hello from the demo page", label="Text")
