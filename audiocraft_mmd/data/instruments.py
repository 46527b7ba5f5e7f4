"""How a score is played: the corpus collections (genre, artist, description, weighting group), the
tempo and transposition ranges, and the General-MIDI ensembles and solo instruments.
"""


# collection -> (genre, default artist, phrase used in the description, weighting group)
COLLECTIONS = {
    'bach': ('baroque', 'Johann Sebastian Bach', 'a Bach chorale', 'chorale'),
    'palestrina': ('renaissance', 'Giovanni Pierluigi da Palestrina',
                   'a Renaissance mass movement by Palestrina', 'early'),
    'monteverdi': ('renaissance', 'Claudio Monteverdi', 'a Monteverdi madrigal', 'early'),
    'josquin': ('renaissance', 'Josquin des Prez', 'a Renaissance motet by Josquin', 'early'),
    'lusitano': ('renaissance', 'Vicente Lusitano', 'a Renaissance motet', 'early'),
    'trecento': ('medieval', 'Anonymous', 'a medieval Italian song', 'early'),
    'ciconia': ('medieval', 'Johannes Ciconia', 'a medieval song by Ciconia', 'early'),
    'luca': ('medieval', 'Anonymous', 'a medieval song', 'early'),
    'essenFolksong': ('folk', 'Traditional', 'a traditional folk song', 'folk'),
    'ryansMammoth': ('folk', 'Traditional', 'a traditional fiddle tune', 'folk'),
    'oneills1850': ('folk', 'Traditional', 'an Irish folk tune', 'folk'),
    'airdsAirs': ('folk', 'Traditional', 'a Scottish folk air', 'folk'),
    'miscFolk': ('folk', 'Traditional', 'a folk tune', 'folk'),
    'nottingham-dataset': ('folk', 'Traditional', 'an English folk dance tune', 'folk'),
    'leadSheet': ('popular', 'Unknown', 'an old popular song', 'classical'),
    'joplin': ('ragtime', 'Scott Joplin', 'a ragtime piece by Scott Joplin', 'classical'),
}
# Share of each group in the rendered order: the corpus is dominated by Palestrina and folk tunes,
# weighting keeps chorales and classical pieces well represented in a small build.
GROUP_WEIGHTS = {'chorale': 0.3, 'folk': 0.3, 'early': 0.2, 'classical': 0.2}
DEFAULT_BPM = {'chorale': 84.0, 'folk': 110.0, 'early': 100.0, 'classical': 100.0}
TEMPO_RANGE = (0.8, 1.25)
TRANSPOSE_RANGE = (-5, 5)

# Ensembles: (description, GM programs (0-based) from the highest to the lowest part).
ENSEMBLES = {
    'piano': ('a piano', [0]),
    'bright piano': ('a bright piano', [1]),
    'harpsichord': ('a harpsichord', [6]),
    'organ': ('a church organ', [19]),
    'strings': ('a string quartet', [40, 40, 41, 42, 43]),
    'string orchestra': ('a string orchestra', [48, 48, 49]),
    'woodwinds': ('a woodwind ensemble', [73, 68, 71, 70]),
    'brass': ('a brass ensemble', [56, 60, 57, 58]),
    'choir': ('a choir', [52, 52, 53]),
    'guitars': ('acoustic guitars', [24, 25]),
    'chamber': ('a chamber ensemble', [73, 40, 71, 42]),
}
SOLOS = {
    'fiddle': ('a fiddle', [110]),
    'violin': ('a violin', [40]),
    'flute': ('a flute', [73]),
    'recorder': ('a recorder', [74]),
    'whistle': ('a tin whistle', [78]),
    'accordion': ('an accordion', [21]),
    'oboe': ('an oboe', [68]),
    'clarinet': ('a clarinet', [71]),
    'piano': ('a piano', [0]),
    'nylon guitar': ('a nylon-string guitar', [24]),
    'harp': ('a harp', [46]),
    'banjo': ('a banjo', [105]),
}
GM_NAMES = {
    0: 'piano', 1: 'bright piano', 6: 'harpsichord', 19: 'church organ', 21: 'accordion', 24: 'nylon guitar',
    25: 'steel guitar', 40: 'violin', 41: 'viola', 42: 'cello', 43: 'contrabass', 46: 'harp', 48: 'strings',
    49: 'slow strings', 52: 'choir aahs', 53: 'voice oohs', 56: 'trumpet', 57: 'trombone', 58: 'tuba',
    60: 'french horn', 68: 'oboe', 70: 'bassoon', 71: 'clarinet', 73: 'flute', 74: 'recorder', 78: 'whistle',
    105: 'banjo', 110: 'fiddle',
}
