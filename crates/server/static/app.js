// The dashboard's few lines of behaviour (served from the server itself; the content
// security policy allows no inline script): the menu beside the page on wide screens and
// folded on narrow ones, filters that apply when changed, and a confirmation before a form
// that reaches many devices or removes something.
(function () {
  var box = document.getElementById('navbox');
  if (box) {
    var wide = window.matchMedia('(min-width: 701px)');
    var fit = function () { if (wide.matches) { box.setAttribute('open', ''); } else { box.removeAttribute('open'); } };
    fit();
    wide.addEventListener('change', fit);
  }
  document.querySelectorAll('select[data-autosubmit]').forEach(function (s) {
    s.addEventListener('change', function () { s.form.submit(); });
  });
  document.querySelectorAll('form[data-confirm]').forEach(function (f) {
    f.addEventListener('submit', function (e) {
      if (!window.confirm(f.getAttribute('data-confirm'))) { e.preventDefault(); }
    });
  });
})();
