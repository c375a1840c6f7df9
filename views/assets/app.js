// Progressive enhancement only: every action works without this file.
document.addEventListener('click', (event) => {
  const button = event.target instanceof Element ? event.target.closest('[data-copy]') : null;
  if (!button) return;
  const field = document.getElementById(button.getAttribute('data-copy'));
  if (!field || !navigator.clipboard) return;
  navigator.clipboard.writeText(field.value).then(() => {
    button.textContent = 'Copied';
    setTimeout(() => (button.textContent = 'Copy'), 2000);
  });
});
document.addEventListener('focusin', (event) => {
  if (event.target instanceof HTMLInputElement && event.target.classList.contains('secret-value')) event.target.select();
});
